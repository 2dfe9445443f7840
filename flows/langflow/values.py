"""A LangFlow node's field values: declared types, literal values typed."""

from __future__ import annotations

import json
from typing import Any

from flows.base import FlowProblem
from flows.files import file_ids
from flows.langflow.document import LangflowNode, node_problem
from flows.langflow.specs import SECRET_FIELDS

_INT_TYPES = {"int"}
_FLOAT_TYPES = {"float", "slider"}
_DICT_TYPES = {"dict", "NestedDict"}
_TABLE_TYPES = {"table"}
_FILE_TYPES = {"file"}
_MODEL_TYPES = {"model"}  # LangFlow 1.8+ ModelInput: [{provider, name, metadata}]


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
    if ftype in _MODEL_TYPES:
        if value is None or value == "":
            return []  # 1.12+ starters: unset, the deployment's default model
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ValueError(f"expected a list of {{provider, name}} objects, got {value!r}")
        return value
    if ftype in _FILE_TYPES:  # File's path: file ids (flows/langflow/file_node.py)
        return file_ids(value)
    # str, prompt, multiline, other, tab...: text
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
        if name in SECRET_FIELDS:
            values[name] = None  # secrets never come from flow JSON
            continue
        try:
            values[name] = typed_value(field_type(node, name), value)
        except (ValueError, TypeError) as exc:
            problems.append(
                node_problem(f"field {name!r} of {node.id} has an invalid value: {exc}", node, name)
            )
    return values, problems
