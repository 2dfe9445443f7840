"""The LangFlow coverage table: tests/fixtures/langflow/coverage.yaml rendered as Markdown.

``python -m tests.flows.coverage_table`` rewrites the table in docs/langflow-coverage.md
(between its markers); tests/flows/test_coverage.py checks that the two agree.
``python -m tests.flows.coverage_table --check`` lists the starters whose verdict today
differs from the table (after a merge adds components: edit coverage.yaml, then rewrite).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.fixtures import LANGFLOW_FIXTURES

COVERAGE_FILE = LANGFLOW_FIXTURES / "coverage.yaml"
DOC = Path(__file__).resolve().parents[2] / "docs" / "langflow-coverage.md"
BEGIN, END = "<!-- coverage table: begin -->", "<!-- coverage table: end -->"


def coverage_rows() -> list[dict[str, Any]]:
    """Every row of coverage.yaml: file, verdict, refused (component types), why."""
    rows = yaml.safe_load(COVERAGE_FILE.read_text())["starters"]
    return [dict(row) for row in rows]


def render(rows: list[dict[str, Any]]) -> str:
    """The Markdown table: starter, release, verdict, why."""
    lines = ["| starter | release | verdict | why |", "|---|---|---|---|"]
    for row in rows:
        folder, name = str(row["file"]).split("/", 1)
        release = folder.removeprefix("starters-")
        why = row.get("why") or ""
        lines.append(f"| {name.removesuffix('.json')} | {release} | {row['verdict']} | {why} |")
    return "\n".join(lines)


def rewrite_doc() -> None:
    """Replace the table between the markers of docs/langflow-coverage.md."""
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{render(coverage_rows())}\n{END}{tail}")


def doc_table() -> str:
    """The table as it stands in the doc."""
    return DOC.read_text().split(BEGIN, 1)[1].split(END, 1)[0].strip()


def current_verdict(row: dict[str, Any]) -> tuple[str, set[str]]:
    """What validation says of a starter today: runs, or refused naming these types."""
    from flows.langflow.document import parse_document
    from flows.langflow.validation import validate_document

    problems = validate_document(parse_document((LANGFLOW_FIXTURES / row["file"]).read_text()))
    named = {p.node_type for p in problems if p.node_type}
    return ("refused", named) if problems else ("runs", set())


def check() -> list[str]:
    """Rows whose stated verdict is not today's."""
    stale = []
    for row in coverage_rows():
        verdict, named = current_verdict(row)
        stated = (row["verdict"], set(row.get("refused") or ()))
        if (verdict, named) != stated:
            stale.append(f"{row['file']}: table {stated}, now {(verdict, sorted(named))}")
    return stale


if __name__ == "__main__":
    import sys

    if "--check" in sys.argv:
        print("\n".join(check()) or "the table matches")  # noqa: T201
    else:
        rewrite_doc()
