"""Compile a LangFlow export into a CompiledFlow that runs on LangChain.

The graph is validated and compiled once: literal values typed, prompts parsed, chat
models built (each holds a pooled HTTP client) and reused across runs. A run starts
every node as a task that awaits its own inputs, so independent branches run
concurrently. ``config`` (the worker's callbacks) is passed to every model call.

Run rules:
- ``flow_input.input`` goes to ``input_value`` of the nodes chosen by LangFlow's
  ``input_type`` rule (default ``"chat"``: every ChatInput; see ``document``), and to the
  ``data`` of every Webhook (a trigger's entry node). When it is None those nodes keep
  their exported text. A flow without such a node ignores it.
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
from flows.files import FileLimits
from flows.langflow.agent import AgentComponent
from flows.langflow.arxiv import ArXivComponent
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
from flows.langflow.data_components import (
    DATA_COMPONENTS,
    BatchRunComponent,
    LoopComponent,
    SmartRouterComponent,
    StoreMessageComponent,
)
from flows.langflow.document import (
    DEFAULT_INPUT_TYPE,
    InputType,
    LangflowDocument,
    input_nodes,
    parse_document,
)
from flows.langflow.file_node import FILE_KIND, FileComponent
from flows.langflow.kinds import Kind
from flows.langflow.mcp_servers import mcp_server_name, mcp_server_problem
from flows.langflow.mcp_tools import MCPToolsComponent
from flows.langflow.memory_base import MemoryBaseComponent
from flows.langflow.providers import OWN_MODEL_KINDS
from flows.langflow.rag import build_rag_component
from flows.langflow.rag_plan import RagPlan
from flows.langflow.rag_specs import RAG_KINDS
from flows.langflow.specs import OUTPUT_KINDS, SECRET_FIELDS
from flows.langflow.tool_components import (
    APIRequestComponent,
    CalculatorComponent,
    CurrentDateComponent,
    SearchToolComponent,
    URLComponent,
    tools_metadata,
)
from flows.langflow.validation import (
    is_loop_back,
    topological_layers,
    validate_document,
    validate_tweaks,
)
from flows.langflow.values import field_type, literal_values, typed_value
from flows.models import BackendNotAllowed, chat_model
from shared.settings import get_settings

# Model fields whose change needs another model object (everything but the messages).
_MESSAGE_FIELDS = frozenset({"input_value", "system_message", "stream"})
# Components that compute only their connected outputs (a tool computes nothing until called).
_LAZY_OUTPUTS = (
    AgentComponent,
    URLComponent,
    SearchToolComponent,
    APIRequestComponent,
    MemoryBaseComponent,
    ArXivComponent,
)
_AGENT_MODEL_FIELDS = frozenset({"model", "model_name", "temperature", "max_tokens", "agent_llm"})


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
        # Each node's distinct sources, in edge order (linear: dicts keep order and dedupe);
        # a Loop's feedback edge is not a dependency (the loop runs its body itself).
        self.deps: dict[str, list[str]] = {
            nid: list(
                dict.fromkeys(e.source for e in doc.incoming(nid) if not is_loop_back(doc, e))
            )
            for nid in doc.nodes
        }
        self.loop_bodies = self._loop_bodies()
        self.body_of = {b: lid for lid, body in self.loop_bodies.items() for b in body}
        problems: list[FlowProblem] = []
        for nid, node in doc.nodes.items():
            values, _ = literal_values(node)
            self.values[nid] = values
            try:
                self.components[nid] = self._build(nid, node.kind or "", values)
            except BackendNotAllowed as exc:
                problems.append(FlowProblem(str(exc), nid, node.type, exc.field))
            except ValueError as exc:  # e.g. a prompt LangChain refuses
                problems.append(FlowProblem(f"{nid}: {exc}", nid, node.type))
            else:
                comp = self.components[nid]
                if isinstance(comp, _LAZY_OUTPUTS):
                    # Only the connected outputs are computed (a URL in tool mode fetches
                    # nothing until the agent calls it).
                    outs = {e.source_output or "" for e in doc.edges if e.source == nid}
                    comp.wanted = outs or comp.wanted
        if problems:
            raise FlowValidationError(problems)
        # Ingest once (rag_plan): a search node also waits for its collection's ingest.
        self.rag = RagPlan(doc)
        for nid, extra in self.rag.extra_deps.items():
            self.deps[nid].extend(d for d in extra if d not in self.deps[nid])
        for nid, comp in self.components.items():
            if isinstance(comp, ModelComponent):
                used = {e.source_output for e in doc.outgoing(nid)}
                comp.text_wanted = not used or "text_output" in used
        self.input_ids = {n.id for n in input_nodes(doc, input_type)}
        self.output_ids = [nid for nid, n in doc.nodes.items() if n.kind == Kind.CHAT_OUTPUT] + [
            nid for nid, n in doc.nodes.items() if n.kind in OUTPUT_KINDS - {Kind.CHAT_OUTPUT}
        ]
        first = lambda kind: next((n for n in doc.nodes.values() if n.kind == kind), None)  # noqa: E731
        chat_in, chat_out = first(Kind.CHAT_INPUT), first(Kind.CHAT_OUTPUT)
        self._user_node = chat_in.id if chat_in else None
        self._ai_node = chat_out.id if chat_out else None

    def _loop_bodies(self) -> dict[str, list[str]]:
        """Each Loop's body: the nodes reached from its ``item`` output, in run order.

        The loop waits for everything its body reads from outside it, and runs the body
        once per item itself; the body is not scheduled on its own."""
        doc = self.doc
        bodies: dict[str, list[str]] = {}
        for lid, node in doc.nodes.items():
            if node.kind != "LoopComponent":
                continue
            reached: set[str] = set()
            frontier = [
                e.target for e in doc.edges if e.source == lid and e.source_output == "item"
            ]
            while frontier:
                nid = frontier.pop()
                if nid == lid or nid in reached:
                    continue
                reached.add(nid)
                frontier.extend(
                    e.target for e in doc.edges if e.source == nid and not is_loop_back(doc, e)
                )
            if any(doc.nodes[b].kind == "LoopComponent" for b in reached):
                raise FlowValidationError(
                    [
                        FlowProblem(
                            f"loop {lid} contains another loop; nested loops are not served",
                            lid,
                            node.type,
                        )
                    ]
                )
            bodies[lid] = [nid for nid in self.order if nid in reached]
            for b in bodies[lid]:
                for dep in self.deps[b]:
                    if dep != lid and dep not in reached and dep not in self.deps[lid]:
                        self.deps[lid].append(dep)
        return bodies

    def _build(self, nid: str, kind: str, values: dict[str, Any]) -> Component:
        if kind == Kind.PROMPT:
            return PromptComponent(as_text(values.get("template")))
        node_spec = self.doc.nodes[nid].spec
        if node_spec is not None and node_spec.is_model:
            spec = model_spec(kind, values)
            return ModelComponent(nid, kind, chat_model(spec), spec)
        settings = get_settings()
        if kind == "BatchRunComponent":
            connected = any(e.target_field == "model" for e in self.doc.incoming(nid))
            model = None if connected else chat_model(model_spec(kind, values))
            return BatchRunComponent(
                nid,
                model,
                max_rows=settings.langflow_batch_max_rows,
                concurrency=settings.langflow_batch_concurrency,
            )
        if kind == "SmartRouter":
            connected = any(e.target_field == "llm" for e in self.doc.incoming(nid))
            model = None if connected else chat_model(model_spec(kind, values))
            return SmartRouterComponent(nid, model)
        if kind == "LoopComponent":
            return LoopComponent(nid, max_items=settings.langflow_loop_max_items)
        if kind == "Memory" and values.get("mode") == "Store":
            return StoreMessageComponent()
        if kind in DATA_COMPONENTS:
            return DATA_COMPONENTS[kind]()
        if kind == "StructuredOutput":
            connected = any(e.target_field == "llm" for e in self.doc.incoming(nid))
            model = None if connected else chat_model(model_spec(kind, values))
            return StructuredOutputComponent(nid, model)
        if kind == "Agent":
            spec = model_spec(kind, values)
            meta = tools_metadata(self.doc.nodes[nid].template)
            return AgentComponent(nid, chat_model(spec), spec.model_name or "", meta)
        if kind == "CalculatorComponent":
            return CalculatorComponent(tools_metadata(self.doc.nodes[nid].template))
        if kind == "URLComponent":
            template = self.doc.nodes[nid].template
            return URLComponent(template, tools_metadata(template))
        if kind in ("UnifiedWebSearch", "TavilySearchComponent", "SearchComponent"):
            return SearchToolComponent(kind, tools_metadata(self.doc.nodes[nid].template))
        if kind == "APIRequest":
            return APIRequestComponent(tools_metadata(self.doc.nodes[nid].template))
        if kind == "CurrentDate":
            return CurrentDateComponent(tools_metadata(self.doc.nodes[nid].template))
        if kind == "MemoryBase":
            return MemoryBaseComponent(tools_metadata(self.doc.nodes[nid].template))
        if kind == "ArXivComponent":
            return ArXivComponent(tools_metadata(self.doc.nodes[nid].template))
        if kind == "MCPTools":
            node = self.doc.nodes[nid]
            if (why := mcp_server_problem(nid, node.type, node.template, settings)) is not None:
                raise ValueError(why)
            server = mcp_server_name(node.template)
            url = settings.mcp_servers[server]
            return MCPToolsComponent(nid, server, url, tools_metadata(node.template))
        if kind == FILE_KIND:
            return FileComponent(
                nid, FileLimits.from_settings(settings), settings.max_files_per_node
            )
        if kind in RAG_KINDS:
            return build_rag_component(nid, kind, values)
        return SIMPLE_COMPONENTS[kind]()

    def _run_values(self, flow_input: FlowInput) -> dict[str, dict[str, Any]]:
        values = {nid: dict(v) for nid, v in self.values.items()}
        for nid, fields in (flow_input.tweaks or {}).items():
            node = self.doc.nodes[nid]
            for name, raw in fields.items():
                if name in SECRET_FIELDS:
                    continue  # secrets never come from the request either
                values[nid][name] = typed_value(field_type(node, name), raw)
            comp = self.components[nid]
            if isinstance(comp, ModelComponent) and set(fields) - _MESSAGE_FIELDS:
                values[nid]["__model__"] = chat_model(model_spec(comp.kind, values[nid]))
            elif node.kind in OWN_MODEL_KINDS and "model" in fields:
                kind = node.kind or ""
                values[nid]["__model__"] = chat_model(model_spec(kind, values[nid]))
            if isinstance(comp, AgentComponent) and set(fields) & _AGENT_MODEL_FIELDS:
                values[nid]["__model__"] = chat_model(model_spec("Agent", values[nid]))
        if flow_input.input is not None:
            for nid in self.input_ids:
                # A Webhook reads it from ``data`` (LangFlow's payload field).
                field = "data" if self.doc.nodes[nid].kind == Kind.WEBHOOK else "input_value"
                values[nid][field] = flow_input.input
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
            files=flow_input.files,
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
        order = self.order
        if flow_input.ingest_only:  # an ingest run: only what fills the stores (rag_plan)
            part = self.rag.ingest_part()
            if not part:
                raise FlowValidationError([FlowProblem(self.rag.NO_INGEST)])
            order = [nid for nid in self.order if nid in part]
        rag_run = await self.rag.prepare(values, self.components, ctx)

        async def run_node(nid: str) -> None:
            if nid in rag_run.precomputed:  # feeds only an ingest that is done already
                results[nid] = rag_run.precomputed[nid]
                return
            if self.deps[nid]:
                await asyncio.gather(*(tasks[d] for d in self.deps[nid]))
            node_values = self._fed(nid, values[nid], results, skipped)
            if node_values is None:  # downstream of a stopped branch: LangFlow skips it
                skipped.add(nid)
                return
            comp = self.components[nid]
            if isinstance(comp, LoopComponent):
                body = self.loop_bodies[nid]
                results[nid] = await comp.iterate(
                    node_values, lambda item: self._run_body(nid, body, item, values, results, ctx)
                )
                return
            results[nid] = await comp.run(node_values, ctx)

        for nid in order:
            if nid in self.body_of:
                continue  # run by its loop, once per item
            tasks[nid] = asyncio.create_task(run_node(nid))
        try:
            await asyncio.gather(*tasks.values())
        finally:
            for task in tasks.values():
                task.cancel()
            await rag_run.close()
        if flow_input.ingest_only:
            return FlowResult(text=rag_run.summary(), outputs={})
        outputs: dict[str, Any] = {}
        for nid in self.output_ids:
            if nid in skipped or nid not in results:
                continue
            value = next(iter(results[nid].values()), None)
            outputs[nid] = value.text if isinstance(value, Message) else as_text(value)
        text = next(iter(outputs.values()), None)
        return FlowResult(text=text, outputs=outputs)

    def _fed(
        self,
        nid: str,
        node_values: dict[str, Any],
        results: Mapping[str, Mapping[str, Any]],
        skipped: set[str],
    ) -> dict[str, Any] | None:
        """The node's values with its connected inputs; None when an input is inactive."""
        fed: dict[str, list[Any]] = {}
        for edge in self.doc.incoming(nid):
            if is_loop_back(self.doc, edge):
                continue  # the loop reads its body's result itself
            out = INACTIVE
            if edge.source not in skipped and edge.source in results:
                out = results[edge.source].get(edge.source_output or "")
            if out is INACTIVE:
                return None
            fed.setdefault(edge.target_field or "", []).append(out)
        for name, items in fed.items():
            node_values[name] = items[0] if len(items) == 1 else items
        return node_values

    async def _run_body(
        self,
        loop_id: str,
        body: list[str],
        item: dict[str, Any],
        values: Mapping[str, dict[str, Any]],
        outer: Mapping[str, dict[str, Any]],
        ctx: RunContext,
    ) -> Any:
        """One pass of a loop body for one item; the value fed back into the loop."""
        results: dict[str, dict[str, Any]] = {**outer, loop_id: {"item": item}}
        skipped: set[str] = set()
        for nid in body:  # in dependency order; one item at a time, as LangFlow does
            node_values = self._fed(nid, dict(values[nid]), results, skipped)
            if node_values is None:
                skipped.add(nid)
                continue
            results[nid] = await self.components[nid].run(node_values, ctx)
        back = next((e for e in self.doc.incoming(loop_id) if is_loop_back(self.doc, e)), None)
        if back is None or back.source in skipped or back.source not in results:
            return None
        return results[back.source].get(back.source_output or "")


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
