"""The README's commands, run as written, on their default ports.

- Quick start: `make run` runs `flowfleet up`: the API on 127.0.0.1:8000, llm-sim on 8001.
- Calling it / Following a run: every `curl` line of those README blocks, executed by the
  shell against that service (placeholders such as `3f0c...` and `$RUN` filled in).
- The cluster: `flowfleet up --api 2 --workers 2 --nginx` serves every request through
  nginx on :8080 from both replicas (API 8000 and 8001: llm-sim must move out of the way).

The ports are the README's, so these tests hold an exclusive lock on them for their
duration: test sessions that run at the same time on this machine take turns.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.llm_sim import REPO_ROOT
from tests.support.stack import fresh_postgres_database, postgres_available, wait_for_run

README = (REPO_ROOT / "README.md").read_text()
CLUSTER_LINE = "flowfleet up --api 2 --workers 2 --nginx"
LOCK_PATH = Path(tempfile.gettempdir()) / "flowfleet-readme-ports.lock"


@pytest.fixture(scope="module")
def readme_ports() -> Iterator[None]:
    """Hold the README's ports (8000, 8001, 8080) for this module, across test sessions."""
    with LOCK_PATH.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another session runs these tests
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class Up:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def started(self) -> dict[str, object]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for line in self.output().splitlines():
                if '"flowfleet.up"' in line:
                    return json.loads(line)  # type: ignore[no-any-return]
            assert self.proc.poll() is None, f"flowfleet up exited:\n{self.output()[-4000:]}"
            time.sleep(0.2)
        raise AssertionError(f"flowfleet up did not start:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # Ctrl-C, as the README says
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left of the group
        except ProcessLookupError:
            pass


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    """A new user's environment: no FLOWFLEET_ settings, no OpenAI key (llm-sim answers)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWFLEET_")}
    env.pop("OPENAI_API_KEY", None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["FLOWFLEET_LOG_FORMAT"] = "json"  # the test reads the `flowfleet.up` line
    # The embedded SQLite file, in a fresh place rather than this checkout's var/.
    env["FLOWFLEET_DATABASE_URL"] = f"sqlite:///{tmp / 'flowfleet.db'}"
    env.update(extra)
    return env


def _start(argv: list[str], env: dict[str, str], tmp: Path) -> Up:
    assert argv[0] == "flowfleet"
    log_path = tmp / "up.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flowfleet", *argv[1:]],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Up(proc, log_path)


def _wait_ready(url: str, up: Up) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert up.proc.poll() is None, up.output()[-4000:]
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready:\n{up.output()[-4000:]}")


def _wait_workers(up: Up, count: int) -> None:
    deadline = time.monotonic() + 120
    while up.output().count('"worker.started"') < count:
        assert time.monotonic() < deadline, up.output()[-4000:]
        assert up.proc.poll() is None, up.output()[-4000:]
        time.sleep(0.2)


def _make_run_command() -> list[str]:
    """What `make run` runs, from the Makefile's `run` target."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = re.search(r"^run: .*\n\t(.+)$", makefile, re.MULTILINE)
    assert recipe, "the Makefile has no run target"
    argv = shlex.split(recipe[1])
    assert argv[0] == "$(VENV)/bin/flowfleet"
    return ["flowfleet", *argv[1:]]


def _curl_commands(section: str) -> list[str]:
    """The `curl` commands of a README section's bash blocks (continuations joined)."""
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", body, re.DOTALL):
        joined = re.sub(r"\\\n\s*", "", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line.strip())  # the README's trailing comments
            if line.startswith("curl "):
                commands.append(line)
    return commands


def _curl(command: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run a README curl line in a shell; (HTTP status, output). The status is written out
    after the output by an added ``-w``, which changes nothing else of the command."""
    done = subprocess.run(
        f"{command} -w '\\n__status=%{{http_code}}'",
        shell=True,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, f"{command}\n{done.stderr}"
    out, status = done.stdout.rsplit("\n__status=", 1)
    return int(status), out


def _json(out: str) -> dict[str, object]:
    return json.loads(out.split("\n\n", 1)[-1])  # type: ignore[no-any-return]


def test_the_quick_start_and_every_curl_line_work_as_written(
    readme_ports: None, tmp_path: Path
) -> None:
    assert "make run    # the whole service on 127.0.0.1:8000" in README
    up = _start(_make_run_command(), _env(tmp_path), tmp_path)
    try:
        started = up.started()
        assert started["url"] == "http://127.0.0.1:8000"
        assert started["llm_sim"] == "http://127.0.0.1:8001/v1"
        _wait_ready("http://127.0.0.1:8000", up)
        _walk_through(tmp_path)
        _console_answers()
    finally:
        up.stop()
    assert up.proc.returncode == 0, up.output()[-4000:]


def _console_answers() -> None:
    # The quick start's console link, as written, serves the console's page under make run.
    link = re.search(r"The web console is at <(http://[^>]+)>", README)
    assert link, "the quick start names the console's address"
    page = httpx.get(link.group(1), timeout=10)
    assert page.status_code == 200
    assert "<title>" in page.text
    assert "js/main.js" in page.text  # the console's own module, not some other page


def _walk_through(tmp: Path) -> None:
    # "My Flow.json" is a LangFlow export as the user downloaded it: the shipped starter.
    shutil.copy(REPO_ROOT / "examples" / "flows" / "Basic Prompting.json", tmp / "My Flow.json")
    env = dict(os.environ)
    calling = _curl_commands("Calling it")
    following = _curl_commands("Following a run")
    assert len(calling) >= 10
    assert len(following) == 4
    run_id = ""
    for command in calling:
        command = command.replace("3f0c...", run_id)
        status, out = _curl(command, tmp, env)
        assert 200 <= status < 300, f"{command}\n{status} {out}"
        if re.search(r"-X POST .*/runs ", command):
            assert status == 202
            # A reader runs the next line once this run is done (the README polls for it).
            with httpx.Client(base_url="http://127.0.0.1:8000", timeout=30) as client:
                assert wait_for_run(client, str(_json(out)["id"]), timeout=60)["status"] == (
                    "succeeded"
                )
        if "/v1/flows/basic-prompting/runs" in command:
            assert out.startswith("HTTP/1.1 202")  # -si, as the README shows
            assert re.search(r"^location: /v1/runs/", out, re.IGNORECASE | re.MULTILINE)
            run_id = str(_json(out)["id"])
            assert _json(out)["status"] == "queued"
        elif command.endswith(f"/v1/runs/{run_id}"):
            run = _json(out)
            assert run["status"] == "succeeded"
            assert str(run["output"]["text"]).startswith("You said: What is a queue?")  # type: ignore[index]
        elif command.endswith("/v1/sessions/ada-1/messages"):
            text = json.dumps(_json(out))
            assert "Hi, I am Ada" in text
            assert "Who am I?" in text
    env["RUN"] = run_id
    for command in following:
        status, out = _curl(command, tmp, env)
        if command.endswith("/cancel"):
            assert status == 409, out  # the run finished: the README's "finished → 409"
            continue
        assert status == 200, f"{command}\n{status} {out}"
        if "/events" in command:
            assert "event: done" in out
        elif "/wait" in command or "wait=30" in command:
            assert _json(out)["status"] == "succeeded"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """The cluster as docs/cluster.md runs it: on PostgreSQL when there is one."""
    if postgres_available():
        with fresh_postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'cluster.db'}"


def test_the_cluster_line_serves_every_request_through_nginx_from_both_replicas(
    readme_ports: None, tmp_path: Path, database_url: str
) -> None:
    line = next(x for x in README.splitlines() if x.startswith(CLUSTER_LINE))
    argv = shlex.split(line.split("#", 1)[0])
    assert argv == shlex.split(CLUSTER_LINE)
    up = _start(argv, _env(tmp_path, FLOWFLEET_DATABASE_URL=database_url), tmp_path)
    try:
        started = up.started()
        assert started["url"] == "http://127.0.0.1:8080"
        assert started["api"] == ["http://127.0.0.1:8000", "http://127.0.0.1:8001"]
        assert str(started["llm_sim"]) not in {
            "http://127.0.0.1:8000/v1",
            "http://127.0.0.1:8001/v1",
        }
        _wait_ready("http://127.0.0.1:8001", up)
        _wait_workers(up, 2)
        with httpx.Client(base_url="http://127.0.0.1:8080", timeout=30) as client:
            responses = [
                client.post("/v1/flows/prompt/runs", json={"input": f"q{i}"}) for i in range(16)
            ]
            assert [r.status_code for r in responses] == [202] * 16, [r.text for r in responses]
            runs = [wait_for_run(client, r.json()["id"], timeout=60) for r in responses]
        assert {r["status"] for r in runs} == {"succeeded"}
        served_by = {r.headers["x-served-by"] for r in responses}
        assert len(served_by) == 2, served_by
        assert "child.exited" not in up.output()  # no replica crash-looped
    finally:
        up.stop()


def test_a_taken_readme_port_stops_up_at_once_naming_it(readme_ports: None, tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 8001))
        holder.listen()
        up = _start(shlex.split(CLUSTER_LINE), _env(tmp_path), tmp_path)
        try:
            up.proc.wait(timeout=60)
        finally:
            up.stop()
    assert up.proc.returncode == 1
    assert "port 8001 (API replica 2) is in use by another process" in up.output()
    assert "child.started" not in up.output()  # nothing was started
