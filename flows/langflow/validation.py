"""Validating a parsed LangFlow export: every problem that stops it from running, and its
tweaks, each problem naming the node and field at fault."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flows.base import FlowProblem
from flows.langflow.backend_check import routing_problems
from flows.langflow.conditions import regex_problem
from flows.langflow.document import LangflowDocument, LangflowEdge, LangflowNode, node_problem
from flows.langflow.file_node import FILE_KIND, file_node_problems
from flows.langflow.kinds import Kind
from flows.langflow.mcp_servers import mcp_server_problem
from flows.langflow.providers import PROVIDER_IDS, UnknownProvider, model_choice
from flows.langflow.rag_specs import EMBEDDING_KINDS, hosted_store_problem
from flows.langflow.refusals import refusal_reason
from flows.langflow.specs import MAX_ROUTES, ROUTER_OPERATORS, SCHEMA_TYPES, FieldSpec, accepts
from flows.langflow.templates import TemplateError, template_variables
from flows.langflow.values import field_type, literal_values, typed_value
from flows.routing import model_tweak_refusal
from shared.settings import get_settings


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


def is_loop_back(doc: LangflowDocument, edge: LangflowEdge) -> bool:
    """Whether an edge is a Loop's feedback edge (the body's result back into ``item``)."""
    target = doc.nodes.get(edge.target)
    return target is not None and target.kind == "LoopComponent" and edge.target_field == "item"


def _dependencies(doc: LangflowDocument) -> dict[str, set[str]]:
    # Each node's distinct sources among the document's nodes (edges to unknown ids and
    # repeated edges between the same two nodes count once or not at all). A Loop's feedback
    # edge is not a dependency: the loop runs its body itself.
    deps: dict[str, set[str]] = {nid: set() for nid in doc.nodes}
    for edge in doc.edges:
        if is_loop_back(doc, edge):
            continue
        if edge.source in deps and edge.target in deps:
            deps[edge.target].add(edge.source)
    return deps


def _layers(doc: LangflowDocument, deps: dict[str, set[str]]) -> list[list[str]]:
    # Kahn's algorithm, linear in nodes and edges; on a cycle, the layers it could place.
    position = {nid: index for index, nid in enumerate(doc.nodes)}
    dependents: dict[str, list[str]] = {nid: [] for nid in deps}
    waiting = {nid: len(sources) for nid, sources in deps.items()}
    for nid, sources in deps.items():
        for source in sources:
            dependents[source].append(nid)
    layer = [nid for nid, count in waiting.items() if count == 0]
    layers: list[list[str]] = []
    while layer:
        layers.append(layer)
        ready: list[str] = []
        for nid in layer:
            for dependent in dependents[nid]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    ready.append(dependent)
        layer = sorted(ready, key=position.__getitem__)
    return layers


def topological_layers(doc: LangflowDocument) -> list[list[str]] | None:
    """Node ids in dependency layers (each layer's nodes are independent); None on a cycle.

    A layer is every node whose sources all sit in earlier layers, in the document's node
    order (Kahn's algorithm: linear in nodes and edges).
    """
    layers = _layers(doc, _dependencies(doc))
    return layers if sum(map(len, layers)) == len(doc.nodes) else None


def _cycle_nodes(doc: LangflowDocument) -> list[str]:
    """Nodes on a cycle: what Kahn's algorithm leaves, less what only leads away from one."""
    deps = _dependencies(doc)
    placed = {nid for layer in _layers(doc, deps) for nid in layer}
    keep = {nid for nid in doc.nodes if nid not in placed}
    # Kahn's algorithm from the other end: drop nodes with no successor left in ``keep``.
    successors = {nid: 0 for nid in keep}
    for nid in keep:
        for source in deps[nid]:
            if source in keep:
                successors[source] += 1
    sinks = [nid for nid, count in successors.items() if count == 0]
    while sinks:
        nid = sinks.pop()
        keep.discard(nid)
        for source in deps[nid]:
            if source in keep:
                successors[source] -= 1
                if successors[source] == 0:
                    sinks.append(source)
    return [nid for nid in doc.nodes if nid in keep]


def _node_problems(node: LangflowNode, connected: set[str | None]) -> list[FlowProblem]:
    if node.spec is None:
        if (reason := refusal_reason(node.id, node.type)) is not None:
            return [node_problem(reason, node)]
        return [
            node_problem(
                f"component {node.id} has unsupported type {node.type!r}; "
                "replace it with a supported component "
                "(the README lists them under 'LangFlow exports')",
                node,
            )
        ]
    problems: list[FlowProblem] = []
    if node.edited:
        problems.append(
            node_problem(
                f"component {node.id} ({node.type}) was edited in the LangFlow UI; flowfleet "
                "never runs custom code: restore the built-in component",
                node,
                "code",
            )
        )
    values, value_problems = literal_values(node)
    problems.extend(value_problems)
    problems.extend(provider_problems(node, values))
    if node.kind == "MCPTools":
        why = mcp_server_problem(node.id, node.type, node.template, get_settings())
        if why is not None:
            problems.append(node_problem(why, node, "mcp_server"))
    if node.kind == Kind.MEMORY:
        if values.get("mode") not in (None, "", "Retrieve", "Store"):
            problems.append(
                node_problem(
                    f"component {node.id}: mode {values.get('mode')!r} is unknown; set mode to "
                    "Retrieve or Store",
                    node,
                    "mode",
                )
            )
    problems.extend(kind_problems(node, values, {c for c in connected if c}))
    hosted = hosted_store_problem(node.kind, node.id, get_settings().hosted_stores_mapped)
    if hosted:
        problems.append(node_problem(hosted, node))
    return problems


# The field each kind renders as a template (flows/langflow/templates.py).
TEMPLATE_FIELDS: dict[str, str] = {
    Kind.PROMPT: "template",
    Kind.MEMORY: "template",
    Kind.PARSER: "pattern",
}
# Kinds whose literal values (or tweaks) ``kind_problems`` checks beyond their types.
CHECKED_KINDS = frozenset(
    {Kind.CONDITIONAL_ROUTER, Kind.STRUCTURED_OUTPUT, "SmartRouter", FILE_KIND, *TEMPLATE_FIELDS}
)


def provider_problems(node: LangflowNode, values: Mapping[str, Any]) -> list[FlowProblem]:
    """A model field, ``provider`` or ``agent_llm`` naming a provider flowfleet cannot map."""
    if (
        "model" not in values
        and not (node.spec and node.spec.is_model)
        and "agent_llm" not in values
    ):
        return []
    try:
        model_choice(node.kind or "", values)
    except UnknownProvider as exc:
        return [
            node_problem(
                f"component {node.id} ({node.type}) names provider {exc.name!r}, which flowfleet "
                "does not know; use one of " + ", ".join(PROVIDER_IDS),
                node,
                exc.field_name,
            )
        ]
    return []


def kind_problems(
    node: LangflowNode, values: Mapping[str, Any], connected: Iterable[str] = ()
) -> list[FlowProblem]:
    """Problems in the literal values of an If-Else, a Structured Output or a template."""
    problems: list[FlowProblem] = []
    connected = set(connected)
    template_field = TEMPLATE_FIELDS.get(node.kind or "")
    if template_field and template_field not in connected:
        try:
            template_variables(str(values.get(template_field) or ""))
        except TemplateError as exc:
            problems.append(
                node_problem(
                    f"{node.type} {node.id}: {template_field} is refused: {exc}",
                    node,
                    template_field,
                )
            )
    if node.kind == Kind.CONDITIONAL_ROUTER:
        operator = values.get("operator") or "equals"
        if operator not in ROUTER_OPERATORS:
            problems.append(
                node_problem(
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
                    node_problem(
                        f"If-Else {node.id}: match_text is refused as a regex: {why}",
                        node,
                        "match_text",
                    )
                )
    if node.kind == "SmartRouter":
        routes = values.get("routes") or []
        if len(routes) > MAX_ROUTES:
            problems.append(
                node_problem(
                    f"Smart Router {node.id} has {len(routes)} routes; at most {MAX_ROUTES}",
                    node,
                    "routes",
                )
            )
        for index, row in enumerate(routes if isinstance(routes, list) else []):
            if not isinstance(row, dict) or not str(row.get("route_category") or "").strip():
                problems.append(
                    node_problem(
                        f"route {index + 1} of Smart Router {node.id} has no route_category",
                        node,
                        "routes",
                    )
                )
    if node.kind == "StructuredOutput":
        if "model" not in node.template and "llm" not in connected:
            # Before 1.8 the model came only from the llm edge (no model field to fall back on).
            problems.append(
                node_problem(
                    f"required field 'llm' of {node.id} ({node.type}) is empty and not "
                    "connected: connect a model's model_output to it",
                    node,
                    "llm",
                )
            )
        problems.extend(schema_problems(node, values.get("output_schema") or []))
    if node.kind == FILE_KIND:
        problems.extend(file_node_problems(node, values, connected))
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
            problems.append(node_problem(f"{where} has no name", node, "output_schema"))
        elif name in seen:
            problems.append(
                node_problem(f"{where} repeats the name {name!r}", node, "output_schema")
            )
        else:
            seen.add(name)
        if kind not in SCHEMA_TYPES:
            problems.append(
                node_problem(
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
            node_problem(
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
            node_problem(
                f"edge from {source.id} targets unknown field {edge.target_field!r} of "
                f"{target.id} ({target.type}); reconnect it to an existing input",
                target,
                edge.target_field,
            )
        ]
    out_types = source.spec.outputs.get(edge.source_output or "")
    if out_types is None:
        return [
            node_problem(
                f"edge into {target.id}.{edge.target_field} comes from unknown output "
                f"{edge.source_output!r} of {source.id} ({source.type}); reconnect it",
                target,
                edge.target_field,
            )
        ]
    if not accepts(out_types, target_spec.input_types):
        wanted = ", ".join(target_spec.input_types) or "no connection (literal only)"
        return [
            node_problem(
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
                node_problem(
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
    problems.extend(routing_problems(doc))  # a backend for every model node
    for nid in _cycle_nodes(doc):
        node = doc.nodes[nid]
        problems.append(
            node_problem(
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
            problems.append(node_problem(f"tweak for {node_id} must be an object of fields", node))
            continue
        before = len(problems)
        for name, value in fields.items():
            if (
                node.spec
                # Embeddings nodes choose a backend too: the same rule for their tweaks.
                and (node.spec.is_model or node.kind in EMBEDDING_KINDS)
                and (refused := model_tweak_refusal(node.id, name, value))
            ):
                problems.append(node_problem(refused, node, name))
                continue
            if field_spec(node, name) is None and name not in node.template:
                problems.append(
                    node_problem(f"tweak names unknown field {name!r} of {node_id}", node, name)
                )
                continue
            try:
                typed_value(field_type(node, name), value)
            except (ValueError, TypeError) as exc:
                problems.append(
                    node_problem(f"tweak {node_id}.{name} has an invalid value: {exc}", node, name)
                )
        if len(problems) == before and node.kind in CHECKED_KINDS:
            values, _ = literal_values(node)
            values.update({k: typed_value(field_type(node, k), v) for k, v in fields.items()})
            connected = {e.target_field for e in doc.incoming(node.id) if e.target_field}
            problems.extend(kind_problems(node, values, connected))
        if len(problems) == before and {"model", "provider", "agent_llm"} & set(fields):
            values, _ = literal_values(node)
            values.update({k: typed_value(field_type(node, k), v) for k, v in fields.items()})
            problems.extend(provider_problems(node, values))
    return problems
