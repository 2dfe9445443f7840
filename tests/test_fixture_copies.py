"""The LangFlow exports in tests/fixtures are LangFlow's own, unmodified: each file's sha256
is the one its README records."""

from __future__ import annotations

import hashlib
import re

from tests.support.fixtures import LANGFLOW_FIXTURES


def test_each_export_matches_the_recorded_hash() -> None:
    readme = (LANGFLOW_FIXTURES / "README.md").read_text()
    recorded = dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (.+\.json)$", readme, re.M)
    )
    # The starters corpus lies in starters-<release>/ folders, recorded by relative path.
    exports = sorted(
        p.relative_to(LANGFLOW_FIXTURES).as_posix() for p in LANGFLOW_FIXTURES.rglob("*.json")
    )
    assert exports == sorted(recorded)
    for name in exports:
        digest = hashlib.sha256((LANGFLOW_FIXTURES / name).read_bytes()).hexdigest()
        assert digest == recorded[name], name
