"""LangFlow's Node client, @datastax/langflow-client from npm, run by the machine's node
exactly as its README shows (run, tweak, session, stream) against /api/v1 of the stack."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowfleet.llm_sim import reply_text
from tests.flows.langflow_fixtures import load as _export
from tests.support.stack import Stack

CLIENT_DIR = Path(__file__).parent / "langflow_node"
FLOW = "lf-node-basic"


@pytest.fixture(scope="module")
def node_client() -> Path:
    """The client's directory with its locked packages installed (npm ci, once)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node, "these tests need node on PATH"
    assert npm, "these tests need npm on PATH"
    if not (CLIENT_DIR / "node_modules" / "@datastax" / "langflow-client").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CLIENT_DIR,
            check=True,
            timeout=300,
        )
    return CLIENT_DIR


def test_node_client_runs_tweaks_sessions_and_streams(
    node_client: Path, stack: Stack, client: httpx.Client, sim: httpx.Client
) -> None:
    assert client.put(f"/v1/flows/{FLOW}", json=_export("Basic Prompting.json")).status_code in (
        200,
        201,
    )
    sim.put("/_sim/config", json={"token_s": 0.01, "tokens": 10})

    out = subprocess.run(
        ["node", "client.mjs", stack.api.url, FLOW, "unused-with-auth-off", "Prompt-tOH5D"],
        cwd=node_client,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    got: dict[str, Any] = json.loads(out)

    first, tweaked, _session, streamed = sim.get("/_sim/requests").json()
    assert got["run"]["sessionId"] == FLOW
    assert got["run"]["text"].startswith(reply_text(first["messages"]))
    assert tweaked["messages"][0] == {"role": "system", "content": "Answer like a robot."}
    assert got["tweaked"].startswith(reply_text(tweaked["messages"]))
    assert got["session"] == "node-s1"
    stream = got["stream"]
    assert stream["kinds"][0] == "add_message"
    assert stream["kinds"][-1] == "end"
    assert len(stream["tokens"]) > 1
    assert "".join(stream["tokens"]) == stream["endText"]
    assert stream["endText"].startswith(reply_text(streamed["messages"]))
