"""A real llm-sim over HTTP for the LangFlow execution tests, with backends pointing at it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.settings import get_settings

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def sim_url() -> Iterator[str]:
    """Base URL (with /v1) of an llm-sim process started for this session."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowfleet.llm_sim", "--host", "127.0.0.1", "--port", str(port)]
        + ["--tokens", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("llm-sim did not start")
    yield f"{base}/v1"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def sim(sim_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Models route to the sim; its request log starts empty."""
    monkeypatch.setenv("FLOWFLEET_BACKENDS", f'[{{"name":"sim","base_url":"{sim_url}"}}]')
    monkeypatch.setenv("FLOWFLEET_ALLOW_ADHOC_BACKENDS", "true")
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    get_settings.cache_clear()
    httpx.delete(sim_url.removesuffix("/v1") + "/_sim/requests")
    yield sim_url
    get_settings.cache_clear()


def sim_requests(sim_url: str) -> list[dict]:
    """The chat request bodies the sim received, oldest first."""
    return httpx.get(sim_url.removesuffix("/v1") + "/_sim/requests").json()


def set_sim_latency(sim_url: str, ttft_s: float) -> None:
    httpx.put(sim_url.removesuffix("/v1") + "/_sim/config", json={"ttft_s": ttft_s})
