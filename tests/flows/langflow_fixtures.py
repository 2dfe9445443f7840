"""Shared helpers for the LangFlow tests: the fixture exports and graph surgery."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.support.fixtures import LANGFLOW_FIXTURES

FIXTURE_NAMES = [
    "Basic Prompting.json",
    "Basic Prompt Chaining.json",
    "Memory Chatbot.json",
    "Twitter Thread Generator.json",
    "Basic Prompting (OpenAIModel).json",
]


def load(name: str) -> dict[str, Any]:
    """A fresh copy of a fixture export."""
    return json.loads((LANGFLOW_FIXTURES / name).read_text())


def node_of(flow: dict[str, Any], data_type: str) -> dict[str, Any]:
    """The first node of a given ``data.type``."""
    return next(n for n in flow["data"]["nodes"] if n["data"].get("type") == data_type)


def clone(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)
