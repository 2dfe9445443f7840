"""Every LangFlow starter (1.8.4 and 1.13.0) gets the verdict coverage.yaml states: it
validates and compiles, or it is refused with problems naming exactly the listed components.
The docs' coverage table is the same table."""

from __future__ import annotations

import pytest

from flows.base import FlowValidationError
from flows.langflow.compiler import compile_langflow
from flows.langflow.document import parse_document
from flows.langflow.validation import validate_document
from tests.flows.coverage_table import coverage_rows, doc_table, render
from tests.support.fixtures import LANGFLOW_FIXTURES

ROWS = coverage_rows()


def test_the_table_has_one_row_per_starter() -> None:
    starters = sorted(
        p.relative_to(LANGFLOW_FIXTURES).as_posix()
        for p in LANGFLOW_FIXTURES.glob("starters-*/*.json")
    )
    assert len(starters) == 59
    assert sorted(str(r["file"]) for r in ROWS) == starters


def test_the_docs_table_is_the_coverage_file() -> None:
    """Regenerate with `python -m tests.flows.coverage_table` after editing coverage.yaml."""
    assert doc_table() == render(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[str(r["file"]) for r in ROWS])
def test_starter_verdict(sim: str, row: dict) -> None:
    text = (LANGFLOW_FIXTURES / str(row["file"])).read_text()
    problems = validate_document(parse_document(text))
    if row["verdict"] == "runs":
        assert problems == [], [p.message for p in problems]
        compiled = compile_langflow(text)
        assert compiled.output_ids
        return
    assert row["verdict"] == "refused"
    named = {p.node_type for p in problems}
    assert named == set(row["refused"]), [p.message for p in problems]
    for problem in problems:
        assert problem.node_id
        assert problem.node_id in problem.message
    with pytest.raises(FlowValidationError):
        compile_langflow(text)
