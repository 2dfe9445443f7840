"""The light half of flows: read definitions from disk or an upload, describe, validate.

Nothing here imports LangChain or runs flow code: Python flows are read with
``ast``, LangFlow exports are parsed as data. The API process uses only this.
"""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

from flows.base import FlowDefinition, FlowKind, FlowProblem, FlowValidationError

FLOW_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def content_version(source: str) -> str:
    """The version of a definition: a hash of its content."""
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def flow_id_from_path(path: Path) -> str:
    """`Basic Prompting.json` -> `basic-prompting`."""
    return _ID_CHARS.sub("-", path.stem.strip().lower()).strip("-._")[:128]


def describe(flow_id: str, kind: FlowKind, source: str) -> FlowDefinition:
    """Parse and validate a definition without running any of it."""
    if not re.match(FLOW_ID_PATTERN, flow_id):
        raise FlowValidationError(
            [FlowProblem(f"flow id {flow_id!r} must match {FLOW_ID_PATTERN}", field="id")]
        )
    if kind == "python":
        return describe_python(flow_id, source)
    from flows.langflow.describe import describe as describe_langflow

    return describe_langflow(flow_id, source)


def describe_python(flow_id: str, source: str) -> FlowDefinition:
    """Name and description of a Python flow module, read statically."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise FlowValidationError([FlowProblem(f"Python syntax error: {exc}")]) from exc
    constants: dict[str, object] = {}
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    defined.add(target.id)
                    if isinstance(node.value, ast.Constant):
                        constants[target.id] = node.value.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            defined.add(node.name)
    if "flow" not in defined and "build" not in defined:
        raise FlowValidationError(
            [FlowProblem("a Python flow must define `flow` (a Runnable) or `build()`")]
        )
    name = str(constants.get("NAME") or flow_id)
    description = str(constants.get("DESCRIPTION") or ast.get_docstring(tree) or "")
    uses_history = bool(constants.get("USES_HISTORY", False))
    return FlowDefinition(
        id=flow_id,
        kind="python",
        name=name,
        description=description,
        version=content_version(source),
        source=source,
        inputs=[{"name": "input", "type": "text"}],
        components=[{"id": "flow", "type": "python"}],
        models=[str(constants["MODEL"])] if constants.get("MODEL") else [],
        uses_input=True,
        uses_history=uses_history,
    )


def kind_of(path: Path) -> FlowKind | None:
    return {".json": "langflow", ".py": "python"}.get(path.suffix)  # type: ignore[return-value]


def load_dir(directory: Path) -> tuple[list[FlowDefinition], dict[str, FlowValidationError]]:
    """Every flow in a directory, and the files that failed validation."""
    found: list[FlowDefinition] = []
    failed: dict[str, FlowValidationError] = {}
    if not directory.is_dir():
        return found, failed
    for path in sorted(directory.iterdir()):
        kind = kind_of(path)
        if kind is None or path.name.startswith(("_", ".")):
            continue
        try:
            found.append(describe(flow_id_from_path(path), kind, path.read_text()))
        except FlowValidationError as exc:
            failed[path.name] = exc
    return found, failed
