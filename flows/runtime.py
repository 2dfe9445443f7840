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

    def get(self, flow_id: str, version: str, kind: FlowKind, source: str) -> CompiledFlow:
        key = (flow_id, version)
        compiled = self._items.get(key)
        if compiled is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return compiled
        compiled = self._compile(flow_id, version, kind, source)
        self.compiles += 1
        self._items[key] = compiled
        if len(self._items) > self.max_size:
            self._items.popitem(last=False)
        return compiled

    def _compile(self, flow_id: str, version: str, kind: FlowKind, source: str) -> CompiledFlow:
        if kind == "python":
            from flows.python_flow import load_python_flow

            return load_python_flow(self.flows_dir, flow_id, version)
        from flows.langflow.compiler import compile_langflow

        return compile_langflow(source)
