"""The agent's built-in tools as plain functions: the calculator never evaluates code, the
date tool names its timezone, a URL page becomes LangFlow's row."""

from __future__ import annotations

import pytest

from flows.langflow.tools.calculator import MAX_LENGTH, calculate, evaluate
from flows.langflow.tools.current_date import current_date
from flows.langflow.tools.web import page_row


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("4*4*(33/22)+12-20", "16"),
        ("2 ** 10", "1024"),
        ("7 // 2", "3"),
        ("7 % 4", "3"),
        ("-(3 - 5) * +2", "4"),
        ("1/3", "0.333333"),
        ("2**-2", "0.25"),
    ],
)
def test_arithmetic_as_langflow_formats_it(expression: str, result: str) -> None:
    """+ - * / ** // % and parentheses, formatted to six decimals without trailing zeros."""
    assert calculate(expression) == {"result": result}


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "(1).__class__",
        "[1, 2]",
        "x + 1",
        "abs(-1)",
        "1 if 1 else 2",
        "'a' * 3",
        "True + 1",
        "lambda: 1",
    ],
)
def test_anything_but_arithmetic_is_refused(expression: str) -> None:
    """Names, calls, attributes, strings, booleans and other syntax are errors, never run."""
    answer = calculate(expression)
    assert answer["error"].startswith("Invalid expression: ")
    assert answer["input"] == expression


@pytest.mark.parametrize(
    "expression",
    ["2 ** 100000", "9 ** 9 ** 9", "10.0 ** 300 * 10 ** 10", "1" * 400, "-" * 900 + "1"],
)
def test_bounds_keep_an_expression_cheap(expression: str) -> None:
    """Huge exponents, results beyond 1e300, oversized numbers and deep nesting are refused
    at once instead of taking the worker's CPU or memory."""
    assert "error" in calculate(expression)


def test_length_bound_and_division_by_zero() -> None:
    """Over MAX_LENGTH characters is refused; 1/0 is LangFlow's division error."""
    assert "longer than" in calculate("1+" * MAX_LENGTH + "1")["error"]
    assert calculate("1/0") == {"error": "Error: Division by zero", "input": "1/0"}
    assert evaluate("(1+2)*3") == 9.0


def test_current_date_names_the_timezone() -> None:
    assert current_date("Europe/Paris").startswith("Current date and time in Europe/Paris: 20")
    assert current_date("Nowhere/Land") == "Error: unknown timezone 'Nowhere/Land'"


def test_page_row_text_and_markdown() -> None:
    """HTML becomes its text (format Text) or Markdown, with title, description, language."""
    html = (
        '<html lang="en"><head><title>T</title><meta name="description" content="D"></head>'
        "<body><h1>Head</h1><p>Body <b>bold</b></p></body></html>"
    )
    text = page_row("https://x.test/", html, "text/html", "Text")
    assert text["title"] == "T"
    assert text["description"] == "D"
    assert text["language"] == "en"
    assert "Head" in text["text"]
    assert "<h1>" not in text["text"]
    markdown = page_row("https://x.test/", html, "text/html; charset=utf-8", "Markdown")
    assert "# Head" in markdown["text"]
    assert "**bold**" in markdown["text"]
