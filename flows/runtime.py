"""Compiled flows per worker process, cached by (flow id, version)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from flows.base import CompiledFlow, FlowKind


class FlowCache:
    """A bounded LRU of compiled flows; a version is compiled once, then reused."""

    def __init__(self, flows_dir: Path, max_size: int = 64) -> None:
        self.flows_dir = flows_dir
        self.max_size = max_size
        self._items: OrderedDict[tuple[str, str], CompiledFlow] = OrderedDict()
        self.hits = 0
        self.compiles = 0

    def lookup(self, flow_id: str, version: str) -> CompiledFlow | None:
        """The compiled flow if this process has it; counts a hit."""
        compiled = self._items.get((flow_id, version))
        if compiled is not None:
            self._items.move_to_end((flow_id, version))
            self.hits += 1
        return compiled

    def compile(self, flow_id: str, version: str, kind: FlowKind, source: str) -> CompiledFlow:
        """Compile a version and keep it; the least recently used one goes when full."""
        compiled = self._compile(flow_id, version, kind, source)
        self.compiles += 1
        self._items[(flow_id, version)] = compiled
        if len(self._items) > self.max_size:
            self._items.popitem(last=False)
        return compiled

    def _compile(self, flow_id: str, version: str, kind: FlowKind, source: str) -> CompiledFlow:
        if kind == "python":
            from flows.python_flow import load_python_flow

            return load_python_flow(self.flows_dir, flow_id, version)
        from flows.langflow.compiler import compile_langflow

        return compile_langflow(source)
