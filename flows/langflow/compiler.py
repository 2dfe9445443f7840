"""Compile a LangFlow export into a CompiledFlow that runs on LangChain.

The graph is validated and compiled once: literal values typed, prompts parsed, chat
models built (each holds a pooled HTTP client) and reused across runs. A run starts
every node as a task that awaits its own inputs, so independent branches run
concurrently. ``config`` (the worker's callbacks) is passed to every model call.

Run rules:
- ``flow_input.input`` goes to ``input_value`` of the nodes chosen by LangFlow's
  ``input_type`` rule (default ``"chat"``: every ChatInput; see ``document``). When it is
  None those nodes keep their exported text. A flow without such a node ignores it.
- Tweaks ``{component_id: {field: value}}`` override field values for one run, applied
  before the input (the input wins, as in LangFlow). A tweak to a model field builds a
  new model for that run.
- ``FlowResult.text`` is the first ChatOutput's text (in export order; TextOutput when
  there is none); ``FlowResult.outputs`` holds every ChatOutput/TextOutput text by id.
- Branches: an If-Else produces only the output whose case holds; the other is
  ``INACTIVE``. A node fed by an inactive output or by a skipped node is skipped (never
  run, its models never called), as LangFlow marks every node downstream of the stopped
  output inactive. Skipped ChatOutputs/TextOutputs are absent from ``outputs``; ``text``
  is the first one that ran (None when none did).
- A model node whose only connected output is ``model_output`` is not called: the model
  object travels along the edge (Structured Output's ``llm``).
- Secrets never come from the flow JSON: a ``load_from_db`` key field names an
  environment variable (``ModelSpec.api_key_env``); a literal key in the JSON is ignored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from flows.base import FlowInput, FlowProblem, FlowResult, FlowValidationError
from flows.langflow.components import (
    INACTIVE,
    SIMPLE_COMPONENTS,
    Component,
    Message,
    ModelComponent,
    PromptComponent,
    RunContext,
    StructuredOutputComponent,
    as_text,
    model_spec,
)
from flows.langflow.document import (
    DEFAULT_INPUT_TYPE,
    InputType,
    LangflowDocument,
    input_nodes,
    parse_document,
)
from flows.langflow.rag import build_rag_component
from flows.langflow.rag_plan import RagPlan
from flows.langflow.rag_specs import RAG_KINDS
from flows.langflow.specs import OUTPUT_KINDS
from flows.langflow.validation import topological_layers, validate_document, validate_tweaks
from flows.langflow.values import field_type, literal_values, typed_value
from flows.models import BackendNotAllowed, chat_model

# Model fields whose change needs another model object (everything but the messages).
_MESSAGE_FIELDS = frozenset({"input_value", "system_message", "stream"})


class CompiledLangflow:
    """A LangFlow graph ready to run many times."""

    def __init__(self, doc: LangflowDocument, input_type: InputType = DEFAULT_INPUT_TYPE) -> None:
        self.doc = doc
        layers = topological_layers(doc)
        if layers is None:  # validate_document already refused cycles
            raise FlowValidationError([FlowProblem("the flow has a cycle")])
        self.order = [nid for layer in layers for nid in layer]
        self.values: dict[str, dict[str, Any]] = {}
        self.components: dict[str, Component] = {}
        self.deps: dict[str, list[str]] = {nid: [] for nid in doc.nodes}
        for edge in doc.edges:
            if edge.source not in self.deps[edge.target]:
                self.deps[edge.target].append(edge.source)
        problems: list[FlowProblem] = []
        for nid, node in doc.nodes.items():
            values, _ = literal_values(node)
            self.values[nid] = values
            try:
                self.components[nid] = self._build(nid, node.kind or "", values)
            except BackendNotAllowed as exc:
                problems.append(FlowProblem(str(exc), nid, node.type, "openai_api_base"))
            except ValueError as exc:  # e.g. a prompt LangChain refuses
                problems.append(FlowProblem(f"{nid}: {exc}", nid, node.type))
        if problems:
            raise FlowValidationError(problems)
        # Ingest once (rag_plan): a search node also waits for its collection's ingest.
        self.rag = RagPlan(doc)
        for nid, extra in self.rag.extra_deps.items():
            self.deps[nid].extend(d for d in extra if d not in self.deps[nid])
        for nid, comp in self.components.items():
            if isinstance(comp, ModelComponent):
                used = {e.source_output for e in doc.edges if e.source == nid}
                comp.text_wanted = not used or "text_output" in used
        self.input_ids = {n.id for n in input_nodes(doc, input_type)}
        self.output_ids = [nid for nid, n in doc.nodes.items() if n.kind == "ChatOutput"] + [
            nid for nid, n in doc.nodes.items() if n.kind in OUTPUT_KINDS - {"ChatOutput"}
        ]
        first = lambda kind: next((n for n in doc.nodes.values() if n.kind == kind), None)  # noqa: E731
        chat_in, chat_out = first("ChatInput"), first("ChatOutput")
        self._user_node = chat_in.id if chat_in else None
        self._ai_node = chat_out.id if chat_out else None

    def _build(self, nid: str, kind: str, values: dict[str, Any]) -> Component:
        if kind == "Prompt":
            return PromptComponent(as_text(values.get("template")))
        if kind in ("LanguageModelComponent", "OpenAIModel"):
            spec = model_spec(kind, values)
            return ModelComponent(nid, kind, chat_model(spec), spec)
        if kind == "StructuredOutput":
            return StructuredOutputComponent(nid)
        if kind in RAG_KINDS:
            return build_rag_component(nid, kind, values)
        return SIMPLE_COMPONENTS[kind]()

    def _run_values(self, flow_input: FlowInput) -> dict[str, dict[str, Any]]:
        values = {nid: dict(v) for nid, v in self.values.items()}
        for nid, fields in (flow_input.tweaks or {}).items():
            node = self.doc.nodes[nid]
            for name, raw in fields.items():
                if node.spec and node.spec.is_model and name in ("api_key", "openai_api_key"):
                    continue  # secrets never come from the request either
                values[nid][name] = typed_value(field_type(node, name), raw)
            comp = self.components[nid]
            if isinstance(comp, ModelComponent) and set(fields) - _MESSAGE_FIELDS:
                values[nid]["__model__"] = chat_model(model_spec(comp.kind, values[nid]))
        if flow_input.input is not None:
            for nid in self.input_ids:
                values[nid]["input_value"] = flow_input.input
        return values

    async def ainvoke(self, flow_input: FlowInput, config: Mapping[str, Any]) -> FlowResult:
        """Run the flow once; every model call gets ``config``."""
        if flow_input.tweaks:
            problems = validate_tweaks(self.doc, flow_input.tweaks)
            if problems:
                raise FlowValidationError(problems)
        values = self._run_values(flow_input)
        ctx = RunContext(
            config=config,
            history=tuple(flow_input.history),
            user_name=str(values[self._user_node].get("sender_name") or "User")
            if self._user_node
            else "User",
            ai_name=str(values[self._ai_node].get("sender_name") or "AI")
            if self._ai_node
            else "AI",
        )
        results: dict[str, dict[str, Any]] = {}
        skipped: set[str] = set()
        tasks: dict[str, asyncio.Task[None]] = {}
        rag_run = await self.rag.prepare(values, self.components, ctx)

        async def run_node(nid: str) -> None:
            if nid in rag_run.precomputed:  # feeds only an ingest that is done already
                results[nid] = rag_run.precomputed[nid]
                return
            if self.deps[nid]:
                await asyncio.gather(*(tasks[d] for d in self.deps[nid]))
            node_values = values[nid]
            fed: dict[str, list[Any]] = {}
            for edge in self.doc.incoming(nid):
                out = INACTIVE
                if edge.source not in skipped:
                    out = results[edge.source].get(edge.source_output or "")
                if out is INACTIVE:  # downstream of a stopped branch: LangFlow skips it
                    skipped.add(nid)
                    return
                fed.setdefault(edge.target_field or "", []).append(out)
            for name, items in fed.items():
                node_values[name] = items[0] if len(items) == 1 else items
            results[nid] = await self.components[nid].run(node_values, ctx)

        for nid in self.order:
            tasks[nid] = asyncio.create_task(run_node(nid))
        try:
            await asyncio.gather(*tasks.values())
        finally:
            for task in tasks.values():
                task.cancel()
            await rag_run.close()
        outputs: dict[str, Any] = {}
        for nid in self.output_ids:
            if nid in skipped:
                continue
            value = next(iter(results[nid].values()), None)
            outputs[nid] = value.text if isinstance(value, Message) else as_text(value)
        text = next(iter(outputs.values()), None)
        return FlowResult(text=text, outputs=outputs)


def compile_langflow(
    text_or_doc: str | bytes | dict[str, Any] | LangflowDocument,
    *,
    input_type: InputType = DEFAULT_INPUT_TYPE,
) -> CompiledLangflow:
    """Validate and compile a LangFlow export; raises FlowValidationError."""
    doc = text_or_doc if isinstance(text_or_doc, LangflowDocument) else parse_document(text_or_doc)
    problems = validate_document(doc)
    if problems:
        raise FlowValidationError(problems)
    return CompiledLangflow(doc, input_type)
