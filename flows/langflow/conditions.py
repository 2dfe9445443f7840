"""The If-Else (ConditionalRouter) condition, and the engine that keeps its regex safe.

Semantics are LangFlow's: ``equals``, ``not equals``, ``contains``, ``starts with`` and
``ends with`` compare text (lower-cased unless ``case_sensitive``); ``regex`` is a match
anchored at the start (``re.match``), never lower-cased; the four numeric operators parse
both sides as floats and are false when either is not a number.

A flow's regex runs on RE2 (``google-re2``), never on Python's backtracking ``re``: RE2
matches in time linear in the text for every pattern, so no pattern a flow supplies can
backtrack (``(a|)(a|)...$``, ``(a+)+$`` and the like run in microseconds). The price is
RE2's syntax: no backreferences and no lookaround. A pattern RE2 refuses is a validation
problem at upload naming the node and field; one that arrives at run time (connected or
tweaked) fails the run with the same message. LangFlow would treat an invalid pattern as
false; flowfleet refuses it so a typo never routes silently.

Linear is not yet bounded: RE2's worst case is about (program size x text length) steps
(its NFA keeps one thread per instruction), e.g. ``(?:[a-z]{0,1000})*b`` on 100,000
characters takes seconds. So a pattern is at most ``MAX_PATTERN`` characters and
``MAX_PROGRAM`` RE2 instructions (compiled within ``RE2_MAX_MEM`` bytes), and it reads at
most ``MAX_REGEX_WORK // program size`` characters of text (200,000 for a typical
pattern of 25 instructions); a longer text fails the run instead of stalling the worker.
The worst case then stays under about half a second of one core.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

MAX_PATTERN = 1000
MAX_PROGRAM = 2000  # RE2 instructions; `\d{3}-\d{4}` is 12, `.{1000}` is 8,000
MAX_REGEX_WORK = 5_000_000  # instructions x characters: ~0.2-0.4 s of one core, worst case
# Compiling a bigger program is refused early, not grown: a refusal costs at most ~30 ms.
RE2_MAX_MEM = 256 << 10
_NUMERIC = ("less than", "less than or equal", "greater than", "greater than or equal")


class UnsafeRegex(ValueError):
    """A pattern flowfleet refuses to run: too long, too big, or not RE2 syntax."""


def _options() -> Any:
    options = re2.Options()
    options.max_mem = RE2_MAX_MEM
    options.log_errors = False  # a refused pattern is the flow's error, not a log line
    return options


_OPTIONS = _options()


def compile_regex(pattern: str) -> Any:
    """The RE2 program for a flow's pattern (cached); raises UnsafeRegex."""
    program, refused = _compile(pattern)
    if refused is not None:
        raise UnsafeRegex(refused)
    return program


@lru_cache(maxsize=512)
def _compile(pattern: str) -> tuple[Any, str | None]:
    # Refusals are cached too: a pattern sent again (a tweak per run) costs nothing.
    if len(pattern) > MAX_PATTERN:
        return None, f"the pattern has {len(pattern)} characters; the limit is {MAX_PATTERN}"
    try:
        program = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        return None, (
            f"not a pattern flowfleet can run ({reason}); regexes use RE2 syntax, "
            "which has no backreferences (\\1) or lookaround ((?=...), (?!...), (?<=...))"
        )
    if program.programsize > MAX_PROGRAM:
        return None, (
            f"the pattern compiles to {program.programsize} RE2 instructions; the limit is "
            f"{MAX_PROGRAM} (a counted repeat like {{500}} costs one per repeat)"
        )
    return program, None


def max_regex_text(program: Any) -> int:
    """How many characters of text a compiled pattern may read (``MAX_REGEX_WORK``)."""
    return int(MAX_REGEX_WORK // max(int(program.programsize), 1))


def regex_problem(pattern: str) -> str | None:
    """Why a pattern is refused, or None when it can run."""
    try:
        compile_regex(pattern)
    except UnsafeRegex as exc:
        return str(exc)
    return None


def evaluate_condition(
    input_text: str, match_text: str, operator: str, *, case_sensitive: bool
) -> bool:
    """LangFlow's If-Else condition. Raises UnsafeRegex or ValueError (unknown operator)."""
    if operator == "regex":
        program = compile_regex(match_text)
        limit = max_regex_text(program)
        if len(input_text) > limit:
            raise UnsafeRegex(
                f"the text to match has {len(input_text)} characters; this pattern may read "
                f"at most {limit} (a smaller pattern may read more)"
            )
        return program.match(input_text) is not None
    if not case_sensitive:
        input_text, match_text = input_text.lower(), match_text.lower()
    if operator == "equals":
        return input_text == match_text
    if operator == "not equals":
        return input_text != match_text
    if operator == "contains":
        return match_text in input_text
    if operator == "starts with":
        return input_text.startswith(match_text)
    if operator == "ends with":
        return input_text.endswith(match_text)
    if operator in _NUMERIC:
        try:
            left, right = float(input_text), float(match_text)
        except ValueError:
            return False  # not numbers: false, as in LangFlow
        if operator == "less than":
            return left < right
        if operator == "less than or equal":
            return left <= right
        if operator == "greater than":
            return left > right
        return left >= right
    raise ValueError(f"unknown operator {operator!r}")
