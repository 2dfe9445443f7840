"""The If-Else (ConditionalRouter) condition, and the limits that keep its regex safe.

Semantics are LangFlow's: ``equals``, ``not equals``, ``contains``, ``starts with`` and
``ends with`` compare text (lower-cased unless ``case_sensitive``); ``regex`` is
``re.match`` (anchored at the start, never lower-cased); the four numeric operators parse
both sides as floats and are false when either is not a number.

Python's ``re`` backtracks and cannot be interrupted, so flowfleet bounds the work a
pattern can do instead of timing it out:
- a pattern is at most ``MAX_PATTERN`` characters;
- no backreferences, no repetition inside a repetition (``(a+)+``), no alternation inside a
  repetition (``(a|ab)*``): the shapes that backtrack exponentially;
- at most ``MAX_VARIABLE_REPEATS`` variable-length repeats (``*``, ``+``, ``?``, ``{m,n}``),
  whose worst case is polynomial: about n**k steps for k repeats and n characters, so the
  text a pattern may read shrinks as k grows (``max_regex_input``).

An unsafe or invalid literal pattern is a validation problem; one that arrives at run time
(connected or tweaked) fails the run with the same message. LangFlow would treat an invalid
pattern as false; flowfleet refuses it so a typo never routes silently.
"""

from __future__ import annotations

import re
from typing import Any

try:  # Python 3.11+
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

MAX_PATTERN = 200
MAX_VARIABLE_REPEATS = 3
# Characters of input a pattern with k variable-length repeats may read (index k).
_MAX_INPUT_BY_REPEATS = (100_000, 100_000, 10_000, 1_000)
_NUMERIC = ("less than", "less than or equal", "greater than", "greater than or equal")

_REPEATS = {
    sre_constants.MAX_REPEAT,
    sre_constants.MIN_REPEAT,
    getattr(sre_constants, "POSSESSIVE_REPEAT", sre_constants.MAX_REPEAT),
}
_REFS = {sre_constants.GROUPREF, sre_constants.GROUPREF_EXISTS}
_GROUPREF_IGNORE = getattr(sre_constants, "GROUPREF_IGNORE", None)
_GROUPREF_LOC_IGNORE = getattr(sre_constants, "GROUPREF_LOC_IGNORE", None)
_GROUPREF_UNI_IGNORE = getattr(sre_constants, "GROUPREF_UNI_IGNORE", None)
_REFS |= {r for r in (_GROUPREF_IGNORE, _GROUPREF_LOC_IGNORE, _GROUPREF_UNI_IGNORE) if r}


class UnsafeRegex(ValueError):
    """A pattern flowfleet refuses to run: invalid, too long or able to backtrack for ages."""


def _scan(items: Any, in_repeat: bool, repeats: list[int]) -> None:
    for op, av in items:
        if op in _REPEATS:
            low, high, sub = av
            if in_repeat and high > 1:
                raise UnsafeRegex("a repetition inside a repetition, like (a+)+, is not allowed")
            if low != high:
                repeats[0] += 1
            _scan(sub, in_repeat or high > 1, repeats)
        elif op is sre_constants.BRANCH:
            if in_repeat:
                raise UnsafeRegex(
                    "alternation inside a repetition, like (a|ab)*, is not allowed; "
                    "use a character class or repeat outside the group"
                )
            for sub in av[1]:
                _scan(sub, in_repeat, repeats)
        elif op is sre_constants.SUBPATTERN:
            _scan(av[-1], in_repeat, repeats)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            _scan(av[1], in_repeat, repeats)
        elif op is getattr(sre_constants, "ATOMIC_GROUP", None):
            _scan(av, in_repeat, repeats)
        elif op in _REFS:
            raise UnsafeRegex("backreferences (\\1, (?P=name)) are not allowed")


def check_regex(pattern: str) -> int:
    """Validate a pattern; returns how many characters of input it may read. Raises UnsafeRegex."""
    if len(pattern) > MAX_PATTERN:
        raise UnsafeRegex(f"the pattern has {len(pattern)} characters; the limit is {MAX_PATTERN}")
    try:
        re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise UnsafeRegex(f"invalid regular expression: {exc}") from None
    repeats = [0]
    _scan(parsed, False, repeats)
    if repeats[0] > MAX_VARIABLE_REPEATS:
        raise UnsafeRegex(
            f"the pattern has {repeats[0]} variable-length repeats (*, +, ?, {{m,n}}); "
            f"the limit is {MAX_VARIABLE_REPEATS}"
        )
    return _MAX_INPUT_BY_REPEATS[repeats[0]]


def regex_problem(pattern: str) -> str | None:
    """Why a pattern is refused, or None when it is safe to run."""
    try:
        check_regex(pattern)
    except UnsafeRegex as exc:
        return str(exc)
    return None


def evaluate_condition(
    input_text: str, match_text: str, operator: str, *, case_sensitive: bool
) -> bool:
    """LangFlow's If-Else condition. Raises UnsafeRegex or ValueError (unknown operator)."""
    if operator == "regex":
        limit = check_regex(match_text)
        if len(input_text) > limit:
            raise UnsafeRegex(
                f"the text to match has {len(input_text)} characters; this pattern may read "
                f"at most {limit} (fewer variable-length repeats allow more)"
            )
        return re.match(match_text, input_text) is not None
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
