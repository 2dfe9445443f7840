"""Validating a parsed LangFlow export: every problem that stops it from running, and its
tweaks, each problem naming the node and field at fault."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flows.base import FlowProblem
from flows.langflow.conditions import regex_problem
from flows.langflow.document import LangflowDocument, LangflowEdge, LangflowNode, node_problem
from flows.langflow.rag_specs import hosted_store_problem
from flows.langflow.specs import ROUTER_OPERATORS, SCHEMA_TYPES, FieldSpec, accepts
from flows.langflow.values import field_type, literal_values, prompt_variables, typed_value
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
    if node.spec.is_model and node.kind == "LanguageModelComponent":
        provider = values.get("provider") or "OpenAI"
        if provider != "OpenAI":
            problems.append(
                node_problem(
                    f"component {node.id} uses provider {provider!r}; only OpenAI "
                    "(and OpenAI-compatible servers) is supported: set provider to OpenAI",
                    node,
                    "provider",
                )
            )
    if node.kind == "Memory":
        if values.get("mode") not in (None, "", "Retrieve"):
            problems.append(
                node_problem(
                    f"component {node.id}: only Retrieve mode is supported; set mode to Retrieve",
                    node,
                    "mode",
                )
            )
    problems.extend(kind_problems(node, values, {c for c in connected if c}))
    hosted = hosted_store_problem(node.kind, node.id, get_settings().hosted_stores_mapped)
    if hosted:
        problems.append(node_problem(hosted, node))
    if node.kind == "Prompt":
        try:
            prompt_variables(str(values.get("template") or ""))
        except ValueError as exc:
            problems.append(
                node_problem(
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
        if len(problems) == before and node.kind in ("ConditionalRouter", "StructuredOutput"):
            values, _ = literal_values(node)
            values.update({k: typed_value(field_type(node, k), v) for k, v in fields.items()})
            connected = {e.target_field for e in doc.incoming(node.id) if e.target_field}
            problems.extend(kind_problems(node, values, connected))
    return problems
