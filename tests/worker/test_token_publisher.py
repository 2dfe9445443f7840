"""Token events leave in order, one per token when Redis keeps up, coalesced when it lags,
and never hold up the model's stream."""

from __future__ import annotations

import asyncio

import pytest

from worker.cancel import RunCancelled
from worker.streaming import BatchedTokenPublisher


async def test_each_token_is_its_own_event_while_publishing_keeps_up() -> None:
    sent: list[str] = []

    async def publish(text: str) -> None:
        sent.append(text)

    tokens = BatchedTokenPublisher(publish)
    for token in ["Hel", "lo", " world"]:
        await tokens.on_llm_new_token(token)
        await asyncio.sleep(0.01)  # the next token comes later than a round trip
    await tokens.on_llm_end(None)
    assert sent == ["Hel", "lo", " world"]


async def test_tokens_arriving_during_a_slow_publish_leave_together_without_waiting() -> None:
    sent: list[str] = []
    redis_answers = asyncio.Event()

    async def publish(text: str) -> None:
        sent.append(text)
        await redis_answers.wait()

    tokens = BatchedTokenPublisher(publish)
    await tokens.on_llm_new_token("a")
    await asyncio.sleep(0)  # the sender is now waiting on its first publish
    for token in "bcd":  # the stream goes on meanwhile
        await asyncio.wait_for(tokens.on_llm_new_token(token), timeout=0.1)
    assert sent == ["a"]
    redis_answers.set()
    await tokens.on_llm_end(None)  # returns once everything is out
    assert sent == ["a", "bcd"]


async def test_a_cancel_seen_while_publishing_stops_the_stream() -> None:
    async def publish(text: str) -> None:
        raise RunCancelled("run-1")

    tokens = BatchedTokenPublisher(publish)
    await tokens.on_llm_new_token("a")
    await asyncio.sleep(0)
    with pytest.raises(RunCancelled):
        await tokens.on_llm_new_token("b")
    with pytest.raises(RunCancelled):
        await tokens.drain()
    await tokens.close()  # the run's end never raises
