"""The py-spy summary counts a function once per sample, inclusive and self."""

from __future__ import annotations

from benchmarks.profile_summary import summarise

RAW = """\
run (a/loop.py:10);step (a/flow.py:5);step (a/flow.py:5);call (b/sdk.py:7) 3
run (a/loop.py:10);wait (a/db.py:2) 1
"""


def test_shares_are_per_sample_with_recursion_counted_once() -> None:
    text = summarise(RAW)
    assert text.startswith("4 samples")
    inclusive, own = text.split("self:")
    assert "100.0 %  run loop.py:10" in inclusive
    assert " 75.0 %  step flow.py:5" in inclusive  # twice in the stack, counted once
    assert " 75.0 %  call sdk.py:7" in own
    assert " 25.0 %  wait db.py:2" in own
