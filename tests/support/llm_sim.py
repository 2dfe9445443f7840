"""Start `flowfleet.llm_sim` as a real subprocess, for tests that need an LLM over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]

# SimConfig field names -> command-line flags, so callers use the same names as in Python.
_FLAGS = {
    "ttft_s": "--ttft",
    "token_s": "--token-time",
    "tokens": "--tokens",
    "error_rate": "--error-rate",
    "error_status": "--error-status",
    "hang_rate": "--hang-rate",
    "seed": "--seed",
    "record": "--record",
}


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flag_value(name: str, value: Any) -> str:
    if name == "error_status":
        return ",".join(str(status) for status in value)
    return str(value)


def start_llm_sim(
    port: int | None = None, *, timeout_s: float = 15.0, **opts: Any
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start the sim with SimConfig options; returns (root URL without /v1, process).

    OpenAI clients take f"{base_url}/v1"; the /_sim endpoints live under the root URL.
    Stop it with `stop_llm_sim(process)`.
    """
    port = port or free_port()
    args = [sys.executable, "-m", "flowfleet.llm_sim", "--host", "127.0.0.1", "--port", str(port)]
    for name, value in opts.items():
        args += [_FLAGS[name], _flag_value(name, value)]
    python_path = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": python_path}
    # A file, not a pipe, for stderr: a pipe nobody reads could fill up and block the sim.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, process, timeout_s)
    except Exception:
        stop_llm_sim(process)
        log.seek(0)
        output = log.read().decode(errors="replace")
        raise RuntimeError(f"llm-sim did not start: {output}") from None
    return base_url, process


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"no /healthz within {timeout_s} s")


def stop_llm_sim(process: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    """Terminate the sim, killing it if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
