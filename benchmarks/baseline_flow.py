"""The benchmarked flow compiled in-process, for the baselines that run it without flowfleet."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flows.base import CompiledFlow, FlowInput


# `--stream` (BENCH_STREAM=1): the model streams its answer token by token, as llm-sim's
# timings describe (first token, then one every token_s). The export has `stream` off, so
# each design turns it on the way its users would: a tweak, or ChatOpenAI(streaming=True).
def streaming() -> bool:
    return os.environ.get("BENCH_STREAM") == "1"


def _nodes(flow_file: Path | None = None) -> list[dict[str, Any]]:
    path = flow_file or Path(os.environ["BENCH_FLOW_FILE"])
    return json.loads(path.read_text())["data"]["nodes"]  # type: ignore[no-any-return]


def tweaks(flow_file: Path | None = None) -> dict[str, dict[str, Any]]:
    """The per-run tweaks of the benchmark: the model node's `stream` on in streaming mode."""
    if not streaming():
        return {}
    return {
        n["id"]: {"stream": True}
        for n in _nodes(flow_file)
        if n["data"].get("type") == "LanguageModelComponent"
    }


def load_flow() -> CompiledFlow:
    """Compile the LangFlow export named by BENCH_FLOW_FILE with flowfleet's own compiler."""
    from flows.langflow.compiler import compile_langflow

    return compile_langflow(Path(os.environ["BENCH_FLOW_FILE"]).read_text())


def flow_input(text: str) -> FlowInput:
    return FlowInput(input=text, tweaks=tweaks())


def stock_chain() -> Any:
    """The same flow as tutorials write it: ``prompt | ChatOpenAI | parser``, with the
    OpenAI SDK's own HTTP client and ChatOpenAI's defaults; the messages sent are the same
    as the compiled flow's (the export's system prompt, then the user's text)."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    from shared.settings import get_settings

    nodes = {n["data"].get("type"): n["data"]["node"].get("template", {}) for n in _nodes()}
    system = nodes["Prompt"]["template"]["value"]
    model = nodes["LanguageModelComponent"]["model_name"]["value"]
    # The system prompt holds no {variables} in this export; escape braces anyway.
    prompt = ChatPromptTemplate.from_messages(
        [("system", system.replace("{", "{{").replace("}", "}}")), ("human", "{input}")]
    )
    llm = ChatOpenAI(
        model=model,
        base_url=get_settings().backends[0].base_url,
        api_key="sk-bench",
        streaming=streaming(),
    )
    return prompt | llm | StrOutputParser()
