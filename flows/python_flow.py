"""Python flows: a module in the flows directory exposing a LangChain Runnable.

The module is imported from the operator's flows directory (never from an
upload); its content hash must match the version the run was created with.
The runnable receives ``{"input": str, "history": [messages], "session_id": str}``
and returns a string, a message, or a dict with ``text``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable

from flows.base import FlowInput, FlowProblem, FlowResult, FlowValidationError
from flows.definitions import content_version, flow_id_from_path


class PythonFlow:
    """A compiled Python flow."""

    def __init__(self, runnable: Runnable[Any, Any]) -> None:
        self.runnable = runnable

    async def ainvoke(self, flow_input: FlowInput, config: Mapping[str, Any]) -> FlowResult:
        history: list[BaseMessage] = [
            HumanMessage(m.text) if m.role == "user" else AIMessage(m.text)
            for m in flow_input.history
        ]
        payload = {
            "input": flow_input.input or "",
            "history": history,
            "session_id": flow_input.session_id,
        }
        result = await self.runnable.ainvoke(payload, config=dict(config))  # type: ignore[arg-type]
        text = _text_of(result)
        return FlowResult(text=text, outputs={"flow": text})


def _text_of(result: Any) -> str:
    if isinstance(result, BaseMessage):
        return result.text if isinstance(result.text, str) else str(result.content)
    if isinstance(result, Mapping) and "text" in result:
        return str(result["text"])
    return str(result)


def load_python_flow(flows_dir: Path, flow_id: str, version: str) -> PythonFlow:
    """Import the module for ``flow_id`` and check it is the version the run expects."""
    path = next(
        (p for p in flows_dir.glob("*.py") if flow_id_from_path(p) == flow_id),
        None,
    )
    if path is None:
        raise FlowValidationError([FlowProblem(f"no Python flow {flow_id!r} in {flows_dir}")])
    source = path.read_text()
    if content_version(source) != version:
        raise FlowValidationError(
            [FlowProblem(f"flow {flow_id!r} changed on disk; version {version} is gone")]
        )
    spec = importlib.util.spec_from_file_location(f"flowfleet_flows.{flow_id}_{version}", path)
    if spec is None or spec.loader is None:
        raise FlowValidationError([FlowProblem(f"{path.name} cannot be imported")])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    runnable = module.build() if hasattr(module, "build") else module.flow
    if not isinstance(runnable, Runnable):
        raise FlowValidationError(
            [FlowProblem(f"{path.name}: `flow`/`build()` must give a LangChain Runnable")]
        )
    return PythonFlow(runnable)
