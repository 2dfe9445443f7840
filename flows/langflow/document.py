"""Parse, validate and describe LangFlow exports without importing LangChain.

The API process imports this module to check uploads and to list flows, so it stays
free of LangChain. It never reads, evaluates or compiles the Python source LangFlow
embeds in ``template.code.value``: a component's behaviour comes from its ``data.type``.

Input rule (LangFlow's ``input_type`` of the /run API): flowfleet runs with
``input_type="chat"`` by default, so the run's ``input`` goes to the ``input_value`` of
every ChatInput; TextInput nodes keep their exported text. ``"text"`` targets TextInput
nodes instead and ``"any"`` targets both. A flow with no targeted node ignores
``input``, as LangFlow does.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from flows.base import FlowDefinition, FlowProblem, FlowValidationError
from flows.langflow.conditions import regex_problem
from flows.langflow.specs import (
    INPUT_KINDS,
    ROUTER_OPERATORS,
    SCHEMA_TYPES,
    ComponentSpec,
    FieldSpec,
    accepts,
    spec_for,
)

InputType = Literal["chat", "text", "any"]
DEFAULT_INPUT_TYPE: InputType = "chat"
_INT_TYPES = {"int"}
_FLOAT_TYPES = {"float", "slider"}
_DICT_TYPES = {"dict", "NestedDict"}
_TABLE_TYPES = {"table"}


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

    def incoming(self, node_id: str) -> list[LangflowEdge]:
        """Edges that feed ``node_id``."""
        return [e for e in self.edges if e.target == node_id]


def _problem(
    message: str, node: LangflowNode | None = None, field_name: str | None = None
) -> FlowProblem:
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


def _load_json(text: str | bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        loaded = json.loads(text)
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


def _flatten_groups(nodes: list[Any], edges: list[Any]) -> tuple[list[Any], list[Any]]:
    """Inline group nodes as LangFlow's ``process_flow`` does (proxies redirect edges)."""
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
    return LangflowEdge(
        source=str(raw.get("source")),
        source_output=name if isinstance(name, str) else None,
        target=str(raw.get("target")),
        target_field=field_name if isinstance(field_name, str) else None,
    )


def parse_document(text: str | bytes | dict[str, Any]) -> LangflowDocument:
    """Parse a LangFlow export (full or bare graph); raises FlowValidationError if malformed."""
    obj = _load_json(text)
    nodes_raw, edges_raw = _graph_of(obj)
    nodes_raw, edges_raw = _flatten_groups(nodes_raw, edges_raw)
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


# ---------------------------------------------------------------- field values


def field_type(node: LangflowNode, name: str) -> str:
    """The declared type of a field: the export's, else the spec's, else ``str``."""
    declared = node.template.get(name, {}).get("type")
    if isinstance(declared, str) and declared:
        return declared
    spec_field = node.spec.field(name) if node.spec else None
    return spec_field.type if spec_field else "str"


def typed_value(ftype: str, value: Any) -> Any:
    """Type a literal template value; empty numeric values mean unset (None). Raises ValueError."""
    if ftype in _INT_TYPES or ftype in _FLOAT_TYPES:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
        if ftype in _FLOAT_TYPES:
            return number
        if not number.is_integer():
            raise ValueError(f"expected an integer, got {value!r}")
        return int(number)
    if ftype == "bool":
        if isinstance(value, bool):
            return value
        if value is None or value == "":
            return False
        if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0"}:
            return value.strip().lower() in {"true", "1"}
        if isinstance(value, int):
            return bool(value)
        raise ValueError(f"expected true or false, got {value!r}")
    if ftype in _DICT_TYPES:
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, list):  # LangFlow stores dict fields as [{k: v}, ...] at times
            merged: dict[str, Any] = {}
            for item in value:
                if not isinstance(item, dict):
                    raise ValueError(f"expected an object, got {value!r}")
                merged.update(item)
            value = merged
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {value!r}")
        return value
    if ftype in _TABLE_TYPES:  # LangFlow's TableInput: a list of row objects
        if value is None or value == "":
            return []
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            raise ValueError(f"expected a list of row objects, got {value!r}")
        return value
    # str, prompt, multiline, other, tab, file...: text
    if value is None:
        return ""
    if isinstance(value, list):  # e.g. multi-select: keep the first like a single value
        return "" if not value else str(value[0])
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _default_for(node: LangflowNode, name: str) -> Any:
    spec_field = node.spec.field(name) if node.spec else None
    return spec_field.default if spec_field else None


def literal_values(node: LangflowNode) -> tuple[dict[str, Any], list[FlowProblem]]:
    """Every literal field value of a node, typed; secrets are never read."""
    values: dict[str, Any] = {}
    problems: list[FlowProblem] = []
    names = {f.name for f in node.spec.fields} if node.spec else set()
    for name in names | set(node.template):
        raw = node.template.get(name, {})
        value = raw.get("value") if "value" in raw else _default_for(node, name)
        if raw.get("load_from_db") is True:
            # The value names a secret (an environment variable), never the secret.
            values[name] = None
            values[f"{name}__env"] = value if isinstance(value, str) and value else None
            continue
        if name in {"api_key", "openai_api_key"}:
            values[name] = None  # secrets never come from flow JSON
            continue
        try:
            values[name] = typed_value(field_type(node, name), value)
        except (ValueError, TypeError) as exc:
            problems.append(
                _problem(f"field {name!r} of {node.id} has an invalid value: {exc}", node, name)
            )
    return values, problems


def prompt_variables(template: str) -> list[str]:
    """Variables of an f-string template (``{{``/``}}`` are literal braces). Raises ValueError."""
    names: list[str] = []
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None and name not in names:
            if not name.isidentifier():
                raise ValueError(f"{{{name}}} is not a valid variable name")
            names.append(name)
    return names


# ---------------------------------------------------------------- validation


def field_spec(node: LangflowNode, name: str) -> FieldSpec | None:
    """What a node's field accepts; a Prompt's variables are dynamic Message/Text fields."""
    if node.spec is None:
        return None
    known = node.spec.field(name)
    if known is not None:
        return known
    if node.spec.dynamic_fields and name in node.template:
        declared = node.template[name].get("input_types")
        types = tuple(declared) if isinstance(declared, list) and declared else ("Message", "Text")
        return FieldSpec(name, "str", tuple(str(t) for t in types), default="")
    return None


def topological_layers(doc: LangflowDocument) -> list[list[str]] | None:
    """Node ids in dependency layers (each layer's nodes are independent); None on a cycle."""
    deps: dict[str, set[str]] = {nid: set() for nid in doc.nodes}
    for edge in doc.edges:
        if edge.source in deps and edge.target in deps:
            deps[edge.target].add(edge.source)
    layers: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(deps):
        layer = [nid for nid, d in deps.items() if nid not in done and d <= done]
        if not layer:
            return None
        layers.append(layer)
        done.update(layer)
    return layers


def _cycle_nodes(doc: LangflowDocument) -> list[str]:
    layers = topological_layers(doc) or []
    placed = {nid for layer in layers for nid in layer}
    # Kahn's algorithm from the other end, to keep only nodes on a cycle.
    remaining = [nid for nid in doc.nodes if nid not in placed]
    keep = set(remaining)
    changed = True
    while changed:
        changed = False
        for nid in list(keep):
            if not any(e.source == nid and e.target in keep for e in doc.edges):
                keep.discard(nid)
                changed = True
    return [nid for nid in remaining if nid in keep]


def _node_problems(node: LangflowNode, connected: set[str | None]) -> list[FlowProblem]:
    if node.spec is None:
        return [
            _problem(
                f"component {node.id} has unsupported type {node.type!r}; "
                "replace it with a supported component "
                "(the README lists them under 'LangFlow exports')",
                node,
            )
        ]
    problems: list[FlowProblem] = []
    if node.edited:
        problems.append(
            _problem(
                f"component {node.id} ({node.type}) was edited in the LangFlow UI; flowfleet "
                "never runs custom code: restore the built-in component",
                node,
                "code",
            )
        )
    values, value_problems = literal_values(node)
    problems.extend(value_problems)
    if node.spec.is_model and node.kind == "LanguageModelComponent":
        provider = values.get("provider") or "OpenAI"
        if provider != "OpenAI":
            problems.append(
                _problem(
                    f"component {node.id} uses provider {provider!r}; only OpenAI "
                    "(and OpenAI-compatible servers) is supported: set provider to OpenAI",
                    node,
                    "provider",
                )
            )
    if node.kind == "Memory":
        if values.get("mode") not in (None, "", "Retrieve"):
            problems.append(
                _problem(
                    f"component {node.id}: only Retrieve mode is supported; set mode to Retrieve",
                    node,
                    "mode",
                )
            )
    problems.extend(kind_problems(node, values, {c for c in connected if c}))
    if node.kind == "Prompt":
        try:
            prompt_variables(str(values.get("template") or ""))
        except ValueError as exc:
            problems.append(
                _problem(
                    f"prompt {node.id} has an invalid template ({exc}); "
                    "write literal braces as {{ and }}",
                    node,
                    "template",
                )
            )
    return problems


def kind_problems(
    node: LangflowNode, values: Mapping[str, Any], connected: Iterable[str] = ()
) -> list[FlowProblem]:
    """Problems in the literal values of an If-Else or a Structured Output node."""
    problems: list[FlowProblem] = []
    connected = set(connected)
    if node.kind == "ConditionalRouter":
        operator = values.get("operator") or "equals"
        if operator not in ROUTER_OPERATORS:
            problems.append(
                _problem(
                    f"If-Else {node.id} has unknown operator {operator!r}; use one of "
                    + ", ".join(ROUTER_OPERATORS),
                    node,
                    "operator",
                )
            )
        elif operator == "regex" and "match_text" not in connected:
            why = regex_problem(str(values.get("match_text") or ""))
            if why:
                problems.append(
                    _problem(
                        f"If-Else {node.id}: match_text is refused as a regex: {why}",
                        node,
                        "match_text",
                    )
                )
    if node.kind == "StructuredOutput":
        problems.extend(schema_problems(node, values.get("output_schema") or []))
    return problems


def schema_problems(node: LangflowNode, rows: Any) -> list[FlowProblem]:
    """Problems in a Structured Output ``output_schema`` table (rows: name, type, ...)."""
    problems: list[FlowProblem] = []
    seen: set[str] = set()
    for index, row in enumerate(rows if isinstance(rows, list) else []):
        name = row.get("name") if isinstance(row, dict) else None
        kind = (row.get("type") or "str") if isinstance(row, dict) else None
        where = f"row {index + 1} of output_schema of {node.id}"
        if not isinstance(name, str) or not name.strip():
            problems.append(_problem(f"{where} has no name", node, "output_schema"))
        elif name in seen:
            problems.append(_problem(f"{where} repeats the name {name!r}", node, "output_schema"))
        else:
            seen.add(name)
        if kind not in SCHEMA_TYPES:
            problems.append(
                _problem(
                    f"{where} has type {kind!r}; use one of " + ", ".join(SCHEMA_TYPES),
                    node,
                    "output_schema",
                )
            )
    return problems


def _edge_problems(doc: LangflowDocument, edge: LangflowEdge) -> list[FlowProblem]:
    source, target = doc.nodes.get(edge.source), doc.nodes.get(edge.target)
    if target is None:
        return [
            FlowProblem(
                f"an edge from {edge.source} targets unknown component {edge.target!r}; "
                "remove the edge",
                node_id=edge.target,
                field=edge.target_field,
            )
        ]
    if source is None:
        return [
            _problem(
                f"field {edge.target_field!r} of {target.id} is fed by unknown component "
                f"{edge.source!r}; remove the edge",
                target,
                edge.target_field,
            )
        ]
    if source.spec is None or target.spec is None:
        return []  # already reported as unsupported
    if edge.target_field is None or (target_spec := field_spec(target, edge.target_field)) is None:
        return [
            _problem(
                f"edge from {source.id} targets unknown field {edge.target_field!r} of "
                f"{target.id} ({target.type}); reconnect it to an existing input",
                target,
                edge.target_field,
            )
        ]
    out_types = source.spec.outputs.get(edge.source_output or "")
    if out_types is None:
        return [
            _problem(
                f"edge into {target.id}.{edge.target_field} comes from unknown output "
                f"{edge.source_output!r} of {source.id} ({source.type}); reconnect it",
                target,
                edge.target_field,
            )
        ]
    if not accepts(out_types, target_spec.input_types):
        wanted = ", ".join(target_spec.input_types) or "no connection (literal only)"
        return [
            _problem(
                f"type mismatch: {source.id}.{edge.source_output} produces "
                f"{'/'.join(out_types)} but {target.id}.{edge.target_field} accepts {wanted}",
                target,
                edge.target_field,
            )
        ]
    return []


def _required_problems(doc: LangflowDocument, node: LangflowNode) -> list[FlowProblem]:
    if node.spec is None:
        return []
    values, _ = literal_values(node)
    connected = {e.target_field for e in doc.incoming(node.id)}
    problems = []
    for spec_field in node.spec.fields:
        if not spec_field.required or spec_field.name in connected:
            continue
        value = values.get(spec_field.name)
        if value in (None, "", {}, []):
            problems.append(
                _problem(
                    f"required field {spec_field.name!r} of {node.id} ({node.type}) is empty "
                    "and not connected: connect it or give it a value",
                    node,
                    spec_field.name,
                )
            )
    return problems


def validate_document(doc: LangflowDocument) -> list[FlowProblem]:
    """Every problem that stops the flow from running, each naming node and field."""
    problems: list[FlowProblem] = []
    if not doc.nodes:
        problems.append(FlowProblem("the flow has no components"))
    for node in doc.nodes.values():
        connected = {e.target_field for e in doc.incoming(node.id)}
        problems.extend(_node_problems(node, connected))
    for edge in doc.edges:
        problems.extend(_edge_problems(doc, edge))
    for node in doc.nodes.values():
        problems.extend(_required_problems(doc, node))
    for nid in _cycle_nodes(doc):
        node = doc.nodes[nid]
        problems.append(
            _problem(
                f"component {nid} is part of a cycle; LangFlow flows run once, "
                "remove an edge of the loop",
                node,
            )
        )
    return problems


def validate_tweaks(doc: LangflowDocument, tweaks: Mapping[str, Any]) -> list[FlowProblem]:
    """Check LangFlow tweaks ``{component_id: {field: value}}`` against the flow."""
    problems: list[FlowProblem] = []
    if not isinstance(tweaks, Mapping):
        return [FlowProblem("tweaks must be an object {component_id: {field: value}}")]
    for node_id, fields in tweaks.items():
        node = doc.nodes.get(node_id)
        if node is None:
            problems.append(
                FlowProblem(
                    f"tweak for unknown component {node_id!r}; components: "
                    + ", ".join(sorted(doc.nodes)),
                    node_id=str(node_id),
                )
            )
            continue
        if not isinstance(fields, Mapping):
            problems.append(_problem(f"tweak for {node_id} must be an object of fields", node))
            continue
        before = len(problems)
        for name, value in fields.items():
            if field_spec(node, name) is None and name not in node.template:
                problems.append(
                    _problem(f"tweak names unknown field {name!r} of {node_id}", node, name)
                )
                continue
            try:
                typed_value(field_type(node, name), value)
            except (ValueError, TypeError) as exc:
                problems.append(
                    _problem(f"tweak {node_id}.{name} has an invalid value: {exc}", node, name)
                )
        if len(problems) == before and node.kind in ("ConditionalRouter", "StructuredOutput"):
            values, _ = literal_values(node)
            values.update({k: typed_value(field_type(node, k), v) for k, v in fields.items()})
            connected = {e.target_field for e in doc.incoming(node.id) if e.target_field}
            problems.extend(kind_problems(node, values, connected))
    return problems


# ---------------------------------------------------------------- description


def input_nodes(
    doc: LangflowDocument, input_type: InputType = DEFAULT_INPUT_TYPE
) -> list[LangflowNode]:
    """The nodes that receive the run's ``input`` under LangFlow's ``input_type`` rule."""
    wanted = {"chat": {"ChatInput"}, "text": {"TextInput"}, "any": set(INPUT_KINDS)}[input_type]
    return [n for n in doc.nodes.values() if n.kind in wanted]


def model_names(doc: LangflowDocument) -> list[str]:
    """Model names the flow's model nodes ask for, in node order, unique."""
    names: list[str] = []
    for node in doc.nodes.values():
        if node.spec and node.spec.is_model:
            values, _ = literal_values(node)
            name = values.get("model_name")
            if name and name not in names:
                names.append(name)
    return names


def content_version(obj: Mapping[str, Any]) -> str:
    """The flow version: sha256 of the canonical JSON, first 16 hex digits."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _components(nodes: Iterable[LangflowNode]) -> list[dict[str, Any]]:
    return [{"id": n.id, "type": n.type, "display_name": n.display_name} for n in nodes]


def describe(
    flow_id: str, text: str, *, input_type: InputType = DEFAULT_INPUT_TYPE
) -> FlowDefinition:
    """Parse and validate an export into a FlowDefinition; raises FlowValidationError."""
    doc = parse_document(text)
    problems = validate_document(doc)
    if problems:
        raise FlowValidationError(problems)
    inputs = input_nodes(doc, input_type)
    description = doc.description or ""
    if not inputs:
        note = (
            f"This flow has no {input_type} input component: "
            "it ignores `input` (LangFlow does too)."
        )
        description = f"{description} {note}".strip()
    return FlowDefinition(
        id=flow_id,
        kind="langflow",
        name=doc.name or flow_id,
        description=description,
        version=content_version(doc.raw),
        source=text,
        inputs=[
            {
                "id": n.id,
                "type": "chat" if n.kind == "ChatInput" else "text",
                "field": "input_value",
                "display_name": n.display_name,
            }
            for n in inputs
        ],
        components=_components(doc.nodes.values()),
        models=model_names(doc),
        uses_input=bool(inputs),
        uses_history=any(n.kind == "Memory" for n in doc.nodes.values()),
    )
