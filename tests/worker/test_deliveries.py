"""The held-runs record a heartbeat publishes: what is held, and what was let go since."""

from __future__ import annotations

from worker.deliveries import HeldRuns


def test_a_heartbeat_sends_what_is_held_and_what_was_released_since_the_last() -> None:
    held = HeldRuns()
    held.add("a")
    held.add("b")
    assert sorted(held.take_changes()[0]) == ["a", "b"]
    held.discard("a")
    now, released = held.take_changes()
    assert (now, released) == (["b"], ["a"])
    assert held.take_changes() == (["b"], [])  # a release is sent once


def test_a_release_that_failed_to_send_goes_with_the_next_beat_unless_held_again() -> None:
    held = HeldRuns()
    for run_id in ("a", "b"):
        held.add(run_id)
        held.discard(run_id)
    _, released = held.take_changes()
    held.add("b")  # redelivered to this worker meanwhile
    held.unsent(released)
    assert held.take_changes() == (["b"], ["a"])
