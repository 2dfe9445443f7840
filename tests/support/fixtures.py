"""The real LangFlow exports the tests and the benchmark run (tests/fixtures/langflow/README.md)."""

from __future__ import annotations

from pathlib import Path

# In the repository, so a clone anywhere has them.
LANGFLOW_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "langflow"
