"""The contract between flow definitions and the worker that runs them.

Kept free of LangChain so the API can import the light half of ``flows``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from flows.files import FileSource

FlowKind = Literal["langflow", "python"]


@dataclass(frozen=True)
class HistoryMessage:
    """One earlier turn of a session, oldest first."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class FlowInput:
    """What one run hands to a compiled flow."""

    input: str | None
    session_id: str | None = None
    history: Sequence[HistoryMessage] = ()
    tweaks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The files this run may read (its owner's; File nodes read them): the worker's store.
    files: FileSource | None = None
    # Run only the part that fills vector stores and knowledge bases (POST /v1/flows/{id}/ingest).
    ingest_only: bool = False


@dataclass
class FlowResult:
    """What a compiled flow returns: the main text and every output by component id."""

    text: str | None
    outputs: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"text": self.text, "outputs": self.outputs}


@dataclass(frozen=True)
class FlowProblem:
    """One reason a definition cannot run, precise enough to fix it."""

    message: str
    node_id: str | None = None
    node_type: str | None = None
    field: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "node_type": self.node_type,
            "field": self.field,
            "message": self.message,
        }


class FlowValidationError(ValueError):
    """A definition was rejected; carries every problem found."""

    def __init__(self, problems: Sequence[FlowProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(p.message for p in self.problems))


@dataclass(frozen=True)
class FlowDefinition:
    """A flow as stored and listed: parsed and validated, never executed."""

    id: str
    kind: FlowKind
    name: str
    description: str
    version: str  # content hash of ``source``
    source: str  # LangFlow JSON text or Python module source
    inputs: Sequence[dict[str, Any]] = ()
    components: Sequence[dict[str, Any]] = ()
    models: Sequence[str] = ()
    uses_input: bool = True
    uses_history: bool = False


class CompiledFlow(Protocol):
    """A flow ready to run; built once per (flow id, version) in a worker process.

    ``config`` is a LangChain ``RunnableConfig`` carrying the worker's callbacks
    (token streaming, usage, cancellation); implementations must pass it on to
    every runnable they call.
    """

    async def ainvoke(self, flow_input: FlowInput, config: Mapping[str, Any]) -> FlowResult: ...
