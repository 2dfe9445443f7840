"""What a model_call row keeps of the messages (caps, what goes first), and that a database
that refuses the row costs the row only, never the run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from worker import steps
from worker.model_calls import (
    MESSAGE_MAX_CHARS,
    MESSAGES_MAX_CHARS,
    ModelCalls,
    capture,
    message_text,
)


def test_short_messages_are_kept_whole_with_roles_and_no_note() -> None:
    sent = [
        SystemMessage("You are terse."),
        HumanMessage("6*7?"),
        AIMessage("", tool_calls=[{"name": "calc", "args": {"x": "6*7"}, "id": "c1"}]),
        ToolMessage("42", tool_call_id="c1"),
    ]
    got = capture(sent)
    assert [(m["role"], m["content"]) for m in got["messages"]] == [
        ("system", "You are terse."),
        ("user", "6*7?"),
        ("assistant", '[tool call] calc {"x": "6*7"}'),
        ("tool", "42"),
    ]
    assert got["messages_total"] == 4
    assert got["truncated"] is False
    assert "note" not in got


def test_past_the_caps_the_system_prompt_and_newest_turns_stay_and_a_note_says_so() -> None:
    history = [HumanMessage(f"old turn {i} " + "x" * 1500) for i in range(10)]
    sent = [SystemMessage("S" * 5000), *history, HumanMessage("the question now")]
    got = capture(sent)
    kept = got["messages"]
    total = sum(len(m["content"]) for m in kept)
    assert total <= MESSAGES_MAX_CHARS
    assert all(len(m["content"]) <= MESSAGE_MAX_CHARS for m in kept)
    assert kept[0] == {
        "index": 0,
        "role": "system",
        "content": "S" * MESSAGE_MAX_CHARS,
        "truncated": True,
    }
    assert kept[-1]["content"] == "the question now"
    assert kept[-1]["index"] == 11
    assert got["truncated"] is True
    assert got["messages_total"] == 12
    omitted = 12 - len(kept)
    assert omitted > 0
    assert f"{omitted} of 12 left out" in got["note"]


def test_an_image_block_is_named_never_copied() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 10_000}}
    text = message_text(HumanMessage([{"type": "text", "text": "what is this?"}, image]))
    assert text == "what is this?\n[image_url]"


class _RefusingEngine:
    """A database that fails every statement, as during a failover."""

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Any]:
        raise ConnectionError("database went away")
        yield  # pragma: no cover


async def test_a_database_that_refuses_the_row_is_logged_and_the_call_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lost: list[dict[str, Any]] = []
    monkeypatch.setattr(steps.log, "warning", lambda event, **kw: lost.append({event: kw}))
    ctx = SimpleNamespace(statements=_RefusingEngine())
    calls = ModelCalls(ctx, "run-1", 1)  # type: ignore[arg-type]
    call = uuid.uuid4()
    await calls.on_chat_model_start(
        {}, [[HumanMessage("hi")]], run_id=call, metadata={"flowfleet_backend": "sim"}
    )
    answer = LLMResult(generations=[[ChatGeneration(message=AIMessage("hello"))]])

    await calls.on_llm_end(answer, run_id=call)  # no exception: the run would go on

    assert lost == [
        {"run.step_lost": {"run_id": "run-1", "kind": "model_call", "error": "ConnectionError"}}
    ]
