"""The LangFlow component kinds flowfleet implements, named once.

A kind is the canonical ``data.type`` of a component (``specs`` maps every alias LangFlow
used over its versions to one of these). A ``StrEnum``, so a kind compares equal to the
string LangFlow writes and serialises as that string.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """A supported component kind (the canonical ``data.type``)."""

    CHAT_INPUT = "ChatInput"
    TEXT_INPUT = "TextInput"
    CHAT_OUTPUT = "ChatOutput"
    TEXT_OUTPUT = "TextOutput"
    PROMPT = "Prompt"
    LANGUAGE_MODEL = "LanguageModelComponent"
    OPENAI_MODEL = "OpenAIModel"
    MEMORY = "Memory"
    PARSER = "ParserComponent"
    COMBINE_TEXT = "CombineText"
    CONDITIONAL_ROUTER = "ConditionalRouter"
    STRUCTURED_OUTPUT = "StructuredOutput"
