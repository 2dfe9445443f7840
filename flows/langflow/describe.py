"""Describing a valid LangFlow export for the registry: its inputs, models and version."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from flows.base import FlowDefinition, FlowValidationError
from flows.langflow.document import (
    DEFAULT_INPUT_TYPE,
    InputType,
    LangflowDocument,
    LangflowNode,
    input_nodes,
    parse_document,
)
from flows.langflow.kinds import Kind
from flows.langflow.providers import OWN_MODEL_KINDS, UnknownProvider, model_choice
from flows.langflow.validation import validate_document
from flows.langflow.values import literal_values


def model_names(doc: LangflowDocument) -> list[str]:
    """Model names the flow's model nodes ask for, in node order, unique."""
    names: list[str] = []
    for node in doc.nodes.values():
        if node.spec and (
            node.spec.is_model or node.kind in OWN_MODEL_KINDS or node.kind == "Agent"
        ):
            values, _ = literal_values(node)
            try:  # every export format's model field (flows/langflow/providers.py)
                name = model_choice(node.kind or "", values).model_name
            except UnknownProvider:
                continue
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
                "type": "chat" if n.kind == Kind.CHAT_INPUT else "text",
                "field": "input_value",
                "display_name": n.display_name,
            }
            for n in inputs
        ],
        components=_components(doc.nodes.values()),
        models=model_names(doc),
        uses_input=bool(inputs),
        # Message History, Memory Base and the Agent read the session's earlier turns.
        uses_history=any(
            n.kind in (Kind.MEMORY, "MemoryBase", "Agent") for n in doc.nodes.values()
        ),
    )
