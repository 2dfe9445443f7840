"""The benchmarked flow compiled in-process, for the baselines that run it without flowfleet."""

from __future__ import annotations

import os
from pathlib import Path

from flows.base import CompiledFlow, FlowInput


def load_flow() -> CompiledFlow:
    """Compile the LangFlow export named by BENCH_FLOW_FILE with flowfleet's own compiler."""
    from flows.langflow.compiler import compile_langflow

    return compile_langflow(Path(os.environ["BENCH_FLOW_FILE"]).read_text())


def flow_input(text: str) -> FlowInput:
    return FlowInput(input=text)
