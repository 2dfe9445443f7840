"""LangFlow's File component ("Read File"): its ``path`` holds flowfleet file ids.

As LangFlow's API does with its uploaded files, ``path`` is set in the export or by a
tweak (``{"File-xxxx": {"path": ["<file id>"]}}``), one id or a list. The files are read
through the run's ``FileSource``, which only ever sees the run owner's files, and parsed
by ``flows.files`` (bounded). Outputs, as LangFlow (lfx ``BaseFileComponent``):

- ``message`` (Raw Content): the files' texts joined by ``separator`` (default a blank
  line), with the first file's name and size as data;
- ``dataframe`` (Files / Structured Content): one row ``{file_path, text}`` per file, or a
  single CSV's rows;
- ``json`` (Structured Content of a single .json): the parsed document;
- ``path`` (File Path): the files' names, one per line (never a server path).

A file that fails to parse fails the run (``file_parse_failed`` naming it), unless the
node's ``silent_errors`` is on: then it is left out, as LangFlow does.

Refused at upload (a 422 naming node and field): Docling's Advanced Parser, storage other
than the uploaded files (AWS S3, Google Drive), and a connected ``file_path`` (a path on
the server). The helpers here are light (the API checks files at submit with them); the
component imports the LangChain half only when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flows.base import FlowProblem
from flows.files import FileLimits, ParsedFile, file_ids, read_files
from flows.langflow.document import LangflowNode, node_problem
from shared.errors import FileParseFailed, FlowError

FILE_KIND = "File"
PATH_FIELD = "path"


def tweak_example(node_id: str) -> str:
    return f'{{"{node_id}": {{"path": ["<file id>"]}}}}'


def missing_file_message(node_id: str) -> str:
    """What a run of a File node without a file is told (a 422 at submit)."""
    return (
        f"File node {node_id} has no file: upload one with POST /v1/files and pass its id "
        f"in the run's tweaks, e.g. {tweak_example(node_id)}"
    )


def run_file_ids(node_id: str, exported: Any, tweaks: Mapping[str, Any] | None) -> list[str]:
    """The file ids a run of this File node reads: its tweak's ``path``, else the export's."""
    fields = (tweaks or {}).get(node_id)
    if isinstance(fields, Mapping) and PATH_FIELD in fields:
        return file_ids(fields[PATH_FIELD])
    return file_ids(exported)


def _storage_names(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value] if value else []
    return [str(i.get("name")) if isinstance(i, Mapping) else str(i) for i in items]


def file_node_problems(
    node: LangflowNode, values: Mapping[str, Any], connected: set[str]
) -> list[FlowProblem]:
    """What flowfleet's File node does not do, each a problem naming node and field."""
    problems: list[FlowProblem] = []
    if values.get("advanced_mode") is True:
        problems.append(
            node_problem(
                f"File {node.id}: the Advanced Parser (Docling) is not served; turn "
                "advanced_mode off (text, Markdown, PDF, DOCX, CSV, JSON and HTML are parsed)",
                node,
                "advanced_mode",
            )
        )
    storage = _storage_names(node.template.get("storage_location", {}).get("value"))
    if any(s not in ("", "Local") for s in storage):
        problems.append(
            node_problem(
                f"File {node.id} reads from {', '.join(storage)}; flowfleet reads only files "
                "uploaded with POST /v1/files: set storage_location to Local",
                node,
                "storage_location",
            )
        )
    if "file_path" in connected:
        problems.append(
            node_problem(
                f"File {node.id}: file_path (a path on the server) is not served; upload the "
                f"file with POST /v1/files and set path, e.g. the tweak {tweak_example(node.id)}",
                node,
                "file_path",
            )
        )
    return problems


class FileComponent:
    """Reads and parses the run's files; outputs them as LangFlow's File component does."""

    def __init__(self, node_id: str, limits: FileLimits, max_files: int) -> None:
        self.node_id = node_id
        self.limits = limits
        self.max_files = max_files

    async def run(self, values: dict[str, Any], ctx: Any) -> dict[str, Any]:
        from flows.langflow.components import Message  # the LangChain half: worker only

        ids = file_ids(values.get(PATH_FIELD))
        if not ids:
            raise FlowError(missing_file_message(self.node_id))
        if len(ids) > self.max_files:
            raise FlowError(
                f"File node {self.node_id} names {len(ids)} files; the limit is "
                f"{self.max_files} (FLOWFLEET_MAX_FILES_PER_NODE)"
            )
        source = getattr(ctx, "files", None)
        if source is None:
            raise FlowError(f"File node {self.node_id}: this run has no file store")
        parsed: list[ParsedFile] = []
        for file_id in ids:
            try:
                parsed.extend(await read_files(source, [file_id], self.limits))
            except FileParseFailed:
                if values.get("silent_errors") is not True:
                    raise
                # LangFlow's silent_errors: a file that fails to parse is left out.
        if not parsed:
            return {
                "message": Message(""),
                "dataframe": [],
                "json": {},
                "path": Message(""),
            }
        separator = values.get("separator")
        separator = "\n\n" if not separator else str(separator)
        first = parsed[0]
        message = Message(
            separator.join(p.text for p in parsed),
            data={"file_path": first.name, "filename": first.name},
        )
        return {
            "message": message,
            "dataframe": _rows(parsed),
            "json": _json(parsed),
            "path": Message("\n".join(p.name for p in parsed)),
        }


def _rows(parsed: list[ParsedFile]) -> list[dict[str, Any]]:
    if len(parsed) == 1 and parsed[0].rows is not None:
        return parsed[0].rows
    return [{"file_path": p.name, "text": p.text} for p in parsed]


def _json(parsed: list[ParsedFile]) -> dict[str, Any]:
    value = parsed[0].data
    if isinstance(value, dict):
        return value
    if value is not None:
        return {"value": value}
    return {"file_path": parsed[0].name, "text": parsed[0].text}
