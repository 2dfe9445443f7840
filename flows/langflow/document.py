"""LangFlow exports as documents: their nodes and edges, parsed without importing LangChain.

The API process imports this module (and ``values``, ``validation``, ``describe`` beside
it) to check uploads and to list flows, so they stay free of LangChain. None of them reads,
evaluates or compiles the Python source LangFlow embeds in ``template.code.value``: a
component's behaviour comes from its ``data.type``.

Input rule (LangFlow's ``input_type`` of the /run API): flowfleet runs with
``input_type="chat"`` by default, so the run's ``input`` goes to the ``input_value`` of
every ChatInput; TextInput nodes keep their exported text. ``"text"`` targets TextInput
nodes instead and ``"any"`` targets both. A flow with no targeted node ignores
``input``, as LangFlow does.

Limits (``GraphLimits``, from the ``FLOWFLEET_MAX_FLOW_*`` settings) hold before any work
that grows with the export: its size and JSON nesting depth are checked on the text before
it is parsed, its node and edge counts on every list before and after each group is
inlined, so a bare graph, a wrapped one and nodes nested in groups all count. Everything
after that is linear in nodes and edges (flattening: per group inlined, at most 64).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Literal

from flows.base import FlowProblem, FlowValidationError
from flows.langflow.kinds import Kind
from flows.langflow.specs import INPUT_KINDS, ComponentSpec, spec_for
from shared.settings import Settings, get_settings

InputType = Literal["chat", "text", "any"]
DEFAULT_INPUT_TYPE: InputType = "chat"


class FlowTooLarge(FlowValidationError):
    """The export is over a size limit (bytes, JSON nesting, nodes, edges)."""


@dataclass(frozen=True)
class GraphLimits:
    """What one export may hold; ``from_settings`` reads the ``FLOWFLEET_MAX_FLOW_*`` settings."""

    max_bytes: int = 1024 * 1024
    max_depth: int = 64
    max_nodes: int = 200
    max_edges: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> GraphLimits:
        settings = settings or get_settings()
        return cls(
            max_bytes=settings.max_flow_bytes,
            max_depth=settings.max_flow_depth,
            max_nodes=settings.max_flow_nodes,
            max_edges=settings.max_flow_edges,
        )


@dataclass
class LangflowNode:
    """One component of the flow, with its raw template fields."""

    id: str
    type: str  # ``data.type`` as exported
    spec: ComponentSpec | None
    display_name: str
    template: dict[str, dict[str, Any]]
    edited: bool = False

    @property
    def kind(self) -> str | None:
        """The canonical component kind, or None when unsupported."""
        return self.spec.kind if self.spec else None


@dataclass(frozen=True)
class LangflowEdge:
    """Source output ``source_output`` of ``source`` feeds field ``target_field`` of ``target``."""

    source: str
    source_output: str | None
    target: str
    target_field: str | None


@dataclass
class LangflowDocument:
    """A parsed export: nodes by id (groups flattened, notes dropped) and edges."""

    name: str | None
    description: str | None
    nodes: dict[str, LangflowNode]
    edges: list[LangflowEdge]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    # Edges by target and by source, built once: validation and every run read them per node.
    _by_end: tuple[dict[str, list[LangflowEdge]], dict[str, list[LangflowEdge]]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def _edge_index(self) -> tuple[dict[str, list[LangflowEdge]], dict[str, list[LangflowEdge]]]:
        if self._by_end is None:
            incoming: dict[str, list[LangflowEdge]] = {}
            outgoing: dict[str, list[LangflowEdge]] = {}
            for edge in self.edges:
                incoming.setdefault(edge.target, []).append(edge)
                outgoing.setdefault(edge.source, []).append(edge)
            self._by_end = (incoming, outgoing)
        return self._by_end

    def incoming(self, node_id: str) -> list[LangflowEdge]:
        """Edges that feed ``node_id``."""
        return self._edge_index()[0].get(node_id, [])

    def outgoing(self, node_id: str) -> list[LangflowEdge]:
        """Edges that leave ``node_id``."""
        return self._edge_index()[1].get(node_id, [])


def node_problem(
    message: str, node: LangflowNode | None = None, field_name: str | None = None
) -> FlowProblem:
    """A problem naming the node (and field) at fault."""
    return FlowProblem(
        message=message,
        node_id=node.id if node else None,
        node_type=node.type if node else None,
        field=field_name,
    )


def decode_handle(handle: Any) -> dict[str, Any]:
    """Decode a top-level ``sourceHandle``/``targetHandle`` string (JSON with ``œ`` for ``"``)."""
    if isinstance(handle, dict):
        return handle
    if not isinstance(handle, str) or not handle:
        return {}
    try:
        decoded = json.loads(handle.replace("œ", '"'))
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


# A JSON string, up to its closing quote or the end of the text: the optional closing
# quote and the possessive repeats mean a match never fails or backtracks (linear time).
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deeply a JSON text nests arrays and objects, read without parsing it (linear)."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def _load_json(text: str | bytes | dict[str, Any], limits: GraphLimits) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FlowValidationError([FlowProblem(f"not UTF-8 JSON: {exc}")]) from exc
    if len(text) > limits.max_bytes:
        raise FlowTooLarge(
            [FlowProblem(f"the flow has {len(text)} characters; the limit is {limits.max_bytes}")]
        )
    if (depth := json_depth(text)) > limits.max_depth:
        raise FlowTooLarge(
            [
                FlowProblem(
                    f"the flow nests JSON {depth} levels deep; the limit is {limits.max_depth}"
                )
            ]
        )
    try:
        loaded = json.loads(text)
    except RecursionError as exc:  # unreachable below the depth limit; kept as a backstop
        raise FlowTooLarge([FlowProblem("the flow nests JSON too deeply")]) from exc
    except (ValueError, TypeError) as exc:
        raise FlowValidationError([FlowProblem(f"not valid JSON: {exc}")]) from exc
    if not isinstance(loaded, dict):
        raise FlowValidationError([FlowProblem("a LangFlow export must be a JSON object")])
    return loaded


def _graph_of(obj: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    graph = obj.get("data") if isinstance(obj.get("data"), dict) else obj
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    edges = graph.get("edges") if isinstance(graph, dict) else None
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise FlowValidationError(
            [
                FlowProblem(
                    'expected {"data": {"nodes": [...], "edges": [...]}} or {"nodes", "edges"}'
                )
            ]
        )
    return nodes, edges


def _inner_flow(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    data = node.get("data")
    inner = data.get("node") if isinstance(data, dict) else None
    flow = inner.get("flow") if isinstance(inner, dict) else None
    return flow if isinstance(flow, dict) and flow else None


def _check_counts(nodes: list[Any], edges: list[Any], limits: GraphLimits) -> None:
    if len(nodes) > limits.max_nodes:
        raise FlowTooLarge(
            [
                FlowProblem(
                    f"the flow has {len(nodes)} nodes (groups inlined); "
                    f"the limit is {limits.max_nodes}"
                )
            ]
        )
    if len(edges) > limits.max_edges:
        raise FlowTooLarge(
            [
                FlowProblem(
                    f"the flow has {len(edges)} edges (groups inlined); "
                    f"the limit is {limits.max_edges}"
                )
            ]
        )


def _flatten_groups(
    nodes: list[Any], edges: list[Any], limits: GraphLimits
) -> tuple[list[Any], list[Any]]:
    """Inline group nodes as LangFlow's ``process_flow`` does (proxies redirect edges).

    The counts are checked before and after each group is inlined, so each pass (linear
    in the counts, at most 64 of them) works on a graph within the limits.
    """
    _check_counts(nodes, edges, limits)
    nodes = [n for n in nodes if isinstance(n, dict)]
    edges = [e for e in edges if isinstance(e, dict)]
    for _ in range(64):  # nested groups; bounded so junk cannot loop forever
        group = next((n for n in nodes if _inner_flow(n)), None)
        if group is None:
            break
        flow = _inner_flow(group) or {}
        try:
            g_nodes, g_edges = _graph_of(flow)
        except FlowValidationError:
            g_nodes, g_edges = [], []
        _check_counts(g_nodes, g_edges, limits)  # before copying them
        g_nodes = [dict(n) for n in g_nodes if isinstance(n, dict)]
        g_edges = [e for e in g_edges if isinstance(e, dict)]
        gid = group.get("id")
        group_template = group["data"]["node"].get("template") or {}
        _apply_group_template(group_template, g_nodes)
        sources = {e.get("source") for e in g_edges}
        last = next((n.get("id") for n in g_nodes if n.get("id") not in sources), None)
        rewired: list[Any] = []
        for edge in edges:
            if gid not in (edge.get("source"), edge.get("target")):
                rewired.append(edge)
                continue
            edge = json.loads(json.dumps(edge))
            data = edge.setdefault("data", {}) if isinstance(edge.get("data", {}), dict) else {}
            if edge.get("target") == gid:
                th = data.get("targetHandle") or decode_handle(edge.get("targetHandle"))
                proxy = th.get("proxy") if isinstance(th, dict) else None
                if isinstance(proxy, dict):
                    edge["target"] = proxy.get("id")
                    data["targetHandle"] = {
                        **th,
                        "id": proxy.get("id"),
                        "fieldName": proxy.get("field"),
                    }
            if edge.get("source") == gid:
                sh = data.get("sourceHandle") or decode_handle(edge.get("sourceHandle"))
                proxy = sh.get("proxy") if isinstance(sh, dict) else None
                if isinstance(proxy, dict):  # newer exports name the inner output
                    edge["source"] = proxy.get("id")
                    data["sourceHandle"] = {**sh, "id": proxy.get("id"), "name": proxy.get("name")}
                else:  # LangFlow's rule: the inner node with no outgoing edge
                    edge["source"] = last
                    data["sourceHandle"] = {**(sh or {}), "id": last}
            rewired.append(edge)
        nodes = [n for n in nodes if n is not group] + g_nodes
        edges = rewired + g_edges
        _check_counts(nodes, edges, limits)
    return nodes, edges


def _apply_group_template(template: Mapping[str, Any], g_nodes: list[dict[str, Any]]) -> None:
    # A group's own template fields proxy the inner nodes' fields and carry their values.
    for value in template.values():
        proxy = value.get("proxy") if isinstance(value, dict) else None
        if not isinstance(proxy, dict):
            continue
        for node in g_nodes:
            if node.get("id") != proxy.get("id"):
                continue
            try:
                inner_field = node["data"]["node"]["template"][proxy["field"]]
            except (KeyError, TypeError):
                continue
            if isinstance(inner_field, dict) and "value" in value:
                inner_field["value"] = value["value"]


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# LangFlow's own component packages (1.8+: lfx, with the 1.12+ bundles under it).
_OFFICIAL_MODULES = ("lfx.components.", "langflow.components.")


def bundled_class(inner: Mapping[str, Any]) -> str | None:
    """The class of an official component named by ``metadata.module`` (LangFlow 1.8+),
    e.g. ``lfx.components.openai.openai_chat_model.OpenAIModelComponent``; None when the
    module is not one of LangFlow's own (a custom component's class name means nothing)."""
    metadata = inner.get("metadata")
    module = metadata.get("module") if isinstance(metadata, dict) else None
    if not isinstance(module, str) or not module.startswith(_OFFICIAL_MODULES):
        return None
    return module.rsplit(".", 1)[-1]


def _parse_node(raw: Mapping[str, Any]) -> LangflowNode | None:
    if raw.get("type") == "noteNode":
        return None
    data = _as_dict(raw.get("data"))
    inner = _as_dict(data.get("node"))
    ctype = data.get("type")
    template_raw = _as_dict(inner.get("template"))
    template = {
        k: v
        for k, v in template_raw.items()
        if isinstance(v, dict) and not k.startswith("_") and k != "code"
    }
    node_id = raw.get("id") or data.get("id")
    if not ctype:  # data.type decides; the module's class names a node exported without one
        ctype = bundled_class(inner)
    return LangflowNode(
        id=str(node_id),
        type=str(ctype) if ctype is not None else "",
        spec=spec_for(ctype),
        display_name=str(inner.get("display_name") or ctype or node_id),
        template=template,
        edited=inner.get("edited") is True,
    )


def _parse_edge(raw: Mapping[str, Any]) -> LangflowEdge:
    data = _as_dict(raw.get("data"))
    sh = _as_dict(data.get("sourceHandle"))
    th = _as_dict(data.get("targetHandle"))
    if "name" not in sh:
        sh = decode_handle(raw.get("sourceHandle"))
    if "fieldName" not in th:
        th = decode_handle(raw.get("targetHandle"))
    name, field_name = sh.get("name"), th.get("fieldName")
    if field_name is None and isinstance(th.get("name"), str):
        # A Loop's feedback edge targets the loop's ``item`` output handle, not a field.
        field_name = th["name"]
    return LangflowEdge(
        source=str(raw.get("source")),
        source_output=name if isinstance(name, str) else None,
        target=str(raw.get("target")),
        target_field=field_name if isinstance(field_name, str) else None,
    )


def parse_document(
    text: str | bytes | dict[str, Any], *, limits: GraphLimits | None = None
) -> LangflowDocument:
    """Parse a LangFlow export (full or bare graph); raises FlowValidationError if malformed.

    Raises FlowTooLarge when it is over ``limits`` (default: from the settings).
    """
    limits = limits or GraphLimits.from_settings()
    obj = _load_json(text, limits)
    nodes_raw, edges_raw = _graph_of(obj)
    nodes_raw, edges_raw = _flatten_groups(nodes_raw, edges_raw, limits)
    nodes: dict[str, LangflowNode] = {}
    for raw in nodes_raw:
        node = _parse_node(raw)
        if node is not None:
            nodes[node.id] = node
    note_ids = {str(n.get("id")) for n in nodes_raw if n.get("type") == "noteNode"}
    edges = [_parse_edge(e) for e in edges_raw]
    edges = [e for e in edges if e.source not in note_ids and e.target not in note_ids]
    name, description = obj.get("name"), obj.get("description")
    return LangflowDocument(
        name=name if isinstance(name, str) and name else None,
        description=description if isinstance(description, str) else None,
        nodes=nodes,
        edges=edges,
        raw=obj,
    )


def input_nodes(
    doc: LangflowDocument, input_type: InputType = DEFAULT_INPUT_TYPE
) -> list[LangflowNode]:
    """The nodes that receive the run's ``input`` under LangFlow's ``input_type`` rule."""
    wanted = {"chat": {Kind.CHAT_INPUT}, "text": {Kind.TEXT_INPUT}, "any": set(INPUT_KINDS)}[
        input_type
    ]
    return [n for n in doc.nodes.values() if n.kind in wanted]
