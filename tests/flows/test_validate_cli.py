"""`flowfleet flows validate`: the API's validation as a CI check with an exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.fixtures import LANGFLOW_FIXTURES
from tests.support.llm_sim import REPO_ROOT


def _validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowfleet", "flows", "validate", *map(str, paths)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )


def test_valid_exports_and_python_flows_pass() -> None:
    result = _validate(
        *sorted(LANGFLOW_FIXTURES.glob("*.json")), REPO_ROOT / "examples/flows/chat.py"
    )
    assert result.returncode == 0, result.stdout
    assert result.stdout.count(": ok (") == 6


def test_invalid_export_fails_naming_node_and_field(tmp_path: Path) -> None:
    flow = json.loads((LANGFLOW_FIXTURES / "Basic Prompting.json").read_text())
    model = next(n for n in flow["data"]["nodes"] if n["id"] == "LanguageModelComponent-kBOja")
    model["data"]["node"]["edited"] = True
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(flow))

    result = _validate(bad)

    assert result.returncode == 1
    assert "INVALID" in result.stdout
    assert "LanguageModelComponent-kBOja" in result.stdout
