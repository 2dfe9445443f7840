"""LangFlow's File node in process: its outputs as LangFlow's, its ids from the export or a
tweak, silent_errors, and the File settings flowfleet refuses (each naming node and field)."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from flows.files import FileInfo, FileLimits
from flows.langflow.components import Message, RunContext
from flows.langflow.document import parse_document
from flows.langflow.file_node import FileComponent, run_file_ids
from flows.langflow.validation import validate_document, validate_tweaks
from shared.errors import FileParseFailed, FileUnavailable, FlowError
from tests.support.documents import minimal_pdf
from tests.support.fixtures import LANGFLOW_FIXTURES

DOC_QA = LANGFLOW_FIXTURES / "starters-1.8.4" / "Document Q&A.json"
NODE = "File-b2gOG"


class _Store:
    def __init__(self, files: dict[str, tuple[str, bytes]]) -> None:
        self.files = files

    async def info(self, file_id: str) -> FileInfo:
        if file_id not in self.files:
            raise FileUnavailable(f"no file with id {file_id!r}")
        name, data = self.files[file_id]
        return FileInfo(file_id, name, len(data), f"{file_id}-{len(data)}", "text/plain")

    async def content(self, file_id: str) -> bytes:
        return self.files[file_id][1]


STORE = _Store(
    {
        "t1": ("one.txt", b"first text"),
        "t2": ("two.md", b"# second"),
        "c1": ("people.csv", b"name,age\nAda,36\n"),
        "j1": ("doc.json", b'{"a": 1}'),
        "bad": ("bad.pdf", minimal_pdf(["x"])[:60]),
    }
)


def _run(values: dict[str, Any]) -> dict[str, Any]:
    component = FileComponent("File-1", FileLimits(), max_files=3)
    return asyncio.run(component.run(values, RunContext(config={}, files=STORE)))


def test_one_file_is_its_text_and_name() -> None:
    out = _run({"path": ["t1"]})
    assert isinstance(out["message"], Message)
    assert out["message"].text == "first text"
    assert out["message"].data["file_path"] == "one.txt"
    assert out["dataframe"] == [{"file_path": "one.txt", "text": "first text"}]
    assert out["path"].text == "one.txt"


def test_several_files_join_with_the_separator() -> None:
    assert _run({"path": ["t1", "t2"]})["message"].text == "first text\n\n# second"
    assert _run({"path": ["t1", "t2"], "separator": " | "})["message"].text == (
        "first text | # second"
    )
    assert [r["file_path"] for r in _run({"path": ["t1", "t2"]})["dataframe"]] == [
        "one.txt",
        "two.md",
    ]


def test_a_csv_gives_its_rows_and_a_json_its_document() -> None:
    assert _run({"path": ["c1"]})["dataframe"] == [{"name": "Ada", "age": "36"}]
    assert _run({"path": ["j1"]})["json"] == {"a": 1}


def test_a_file_that_fails_to_parse_fails_unless_silent() -> None:
    with pytest.raises(FileParseFailed, match="bad.pdf"):
        _run({"path": ["t1", "bad"]})
    assert _run({"path": ["t1", "bad"], "silent_errors": True})["message"].text == "first text"


def test_no_file_or_too_many_files_fail_saying_how() -> None:
    with pytest.raises(FlowError, match=r'tweaks, e.g. \{"File-1": \{"path": \["<file id>"\]\}\}'):
        _run({"path": []})
    with pytest.raises(FlowError, match="names 4 files; the limit is 3"):
        _run({"path": ["t1", "t2", "c1", "j1"]})


def test_a_missing_file_is_file_not_found() -> None:
    with pytest.raises(FileUnavailable) as caught:
        _run({"path": ["nope"]})
    assert caught.value.code == "file_not_found"


def test_ids_come_from_the_tweak_else_the_export() -> None:
    assert run_file_ids(NODE, "", None) == []
    assert run_file_ids(NODE, ["x"], None) == ["x"]
    assert run_file_ids(NODE, ["x"], {NODE: {"path": "y"}}) == ["y"]
    assert run_file_ids(NODE, ["x"], {"Other-1": {"path": "y"}}) == ["x"]


def _export() -> dict[str, Any]:
    return json.loads(DOC_QA.read_text())  # type: ignore[no-any-return]


def _file_template(flow: dict[str, Any]) -> dict[str, Any]:
    node = next(n for n in flow["data"]["nodes"] if n["id"] == NODE)
    return node["data"]["node"]["template"]  # type: ignore[no-any-return]


def test_the_document_qa_starter_validates() -> None:
    assert validate_document(parse_document(DOC_QA.read_text())) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("advanced_mode", True), ("storage_location", [{"name": "AWS"}])],
)
def test_unserved_file_settings_are_refused_naming_node_and_field(field: str, value: Any) -> None:
    flow = copy.deepcopy(_export())
    _file_template(flow)[field]["value"] = value
    problems = validate_document(parse_document(json.dumps(flow)))
    assert [(p.node_id, p.field) for p in problems] == [(NODE, field)]


def test_a_tweak_turning_on_the_advanced_parser_is_refused() -> None:
    doc = parse_document(DOC_QA.read_text())
    problems = validate_tweaks(doc, {NODE: {"advanced_mode": True}})
    assert [(p.node_id, p.field) for p in problems] == [(NODE, "advanced_mode")]
    assert validate_tweaks(doc, {NODE: {"path": ["a", "b"]}}) == []


def test_a_connected_server_file_path_is_refused() -> None:
    flow = copy.deepcopy(_export())
    edge = copy.deepcopy(
        next(e for e in flow["data"]["edges"] if e["source"].startswith("ChatInput"))
    )
    edge["target"] = NODE
    edge["data"]["targetHandle"] = {**edge["data"]["targetHandle"], "fieldName": "file_path"}
    edge["data"]["targetHandle"]["id"] = NODE
    edge["data"]["targetHandle"]["inputTypes"] = ["Data", "Message"]
    edge["targetHandle"] = json.dumps(edge["data"]["targetHandle"]).replace('"', "œ")
    flow["data"]["edges"].append(edge)
    problems = validate_document(parse_document(json.dumps(flow)))
    assert [(p.node_id, p.field) for p in problems] == [(NODE, "file_path")]
    assert "POST /v1/files" in problems[0].message
