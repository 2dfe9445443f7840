"""A safe arithmetic evaluator: LangFlow's Calculator, by an AST walk, never ``eval``.

Only numbers, ``+ - * / ** % //``, unary ``+``/``-`` and parentheses are accepted. Bounds keep
one expression from taking the worker's CPU or memory: the text's length, the nesting depth,
the exponent, and every intermediate result's size. Results are floats, formatted as
LangFlow formats them (six decimals, trailing zeros dropped).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

MAX_LENGTH = 1000  # characters of one expression
MAX_EXPONENT = 1000  # |exponent| of **
MAX_MAGNITUDE = 1e300  # any intermediate result
MAX_DEPTH = 100  # nested operations (the walk is recursive)

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.FloorDiv: operator.floordiv,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


class CalculationError(ValueError):
    """The expression is not plain arithmetic, or its result is out of bounds."""


def _checked(value: float) -> float:
    if isinstance(value, complex) or not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise CalculationError("the result is out of range")
    return value


def _evaluate(node: ast.AST, depth: int = 0) -> float:
    if depth > MAX_DEPTH:
        raise CalculationError("the expression is nested too deeply")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalculationError(f"unsupported constant {node.value!r}")
        try:
            return _checked(float(node.value))
        except OverflowError:
            raise CalculationError("a number is out of range") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, depth + 1))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, depth + 1), _evaluate(node.right, depth + 1)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculationError(f"the exponent is larger than {MAX_EXPONENT}")
        try:
            return _checked(_BINARY[type(node.op)](left, right))
        except OverflowError:
            raise CalculationError("the result is out of range") from None
    what = (
        type(node.op).__name__ if isinstance(node, ast.BinOp | ast.UnaryOp) else type(node).__name__
    )
    raise CalculationError(f"unsupported operation {what}")


def evaluate(expression: str) -> float:
    """The value of an arithmetic expression; raises CalculationError or ZeroDivisionError."""
    if len(expression) > MAX_LENGTH:
        raise CalculationError(f"the expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise CalculationError(f"not an arithmetic expression: {exc}") from None
    try:
        return _evaluate(tree.body)
    except RecursionError:  # e.g. a thousand unary minus signs
        raise CalculationError("the expression is nested too deeply") from None


def format_result(value: float) -> str:
    """LangFlow's formatting: six decimals, trailing zeros and point dropped."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def calculate(expression: str) -> dict[str, Any]:
    """LangFlow's Calculator output: ``{"result"}``, or ``{"error", "input"}``."""
    try:
        return {"result": format_result(evaluate(expression))}
    except ZeroDivisionError:
        return {"error": "Error: Division by zero", "input": expression}
    except CalculationError as exc:
        return {"error": f"Invalid expression: {exc}", "input": expression}
