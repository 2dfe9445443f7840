"""The web console in a real browser: Playwright (playwright-core from npm) drives Debian's
chromium against an API + worker + llm-sim stack with keys on, as a user would.

Screenshots go to a temporary folder; set CONSOLE_SCREENSHOTS=docs/console to refresh the
README's. Each scenario is one run of console.mjs, which prints what the page showed.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from shared.queue import RUN_TASK, make_celery
from shared.settings import Settings
from tests.support.faults import isolated_stack
from tests.support.fixtures import LANGFLOW_FIXTURES
from tests.support.keys import as_key, make_key
from tests.support.stack import Stack, start_api, wait_for_run

HERE = Path(__file__).parent
STARTER = LANGFLOW_FIXTURES / "starters-1.13.0" / "Basic Prompting.json"
FLOW = "console-basic"


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "the console tests need Debian's chromium on PATH (make chromium installs it)"
    return found


@pytest.fixture(scope="module")
def node_deps() -> None:
    """playwright-core from the lock file (npm ci, once); it drives the system chromium."""
    npm = shutil.which("npm")
    assert shutil.which("node"), "the console tests need node on PATH"
    assert npm, "the console tests need npm on PATH"
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HERE,
            check=True,
            timeout=300,
        )


@pytest.fixture(scope="module")
def console(infra: dict[str, str], llm_sim: str) -> Iterator[Stack]:
    """A stack with keys enforced, so the console signs in as a real user does."""
    with isolated_stack(llm_sim, infra["redis_url"], FLOWFLEET_AUTH_ENABLED="true") as stack:
        yield stack


@pytest.fixture(scope="module")
def admin_key(console: Stack) -> str:
    return make_key(console, "admin", name="console-admin")


@pytest.fixture(scope="module")
def admin(console: Stack, admin_key: str) -> Iterator[httpx.Client]:
    with as_key(console, admin_key) as c:
        yield c


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("console-shots")
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


@pytest.fixture
def browse(console: Stack, admin_key: str, chromium: str, node_deps: None, shots: Path) -> Any:
    def run(scenario: str, key: str | None = None, **kw: Any) -> dict[str, Any]:
        args = {
            "base": console.api.url,
            "key": key or admin_key,
            "scenario": scenario,
            "chromium": chromium,
            "shots": str(shots),
            **kw,
        }
        done = subprocess.run(
            ["node", "console.mjs", json.dumps(args)],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, f"{scenario} failed:\n{done.stdout}\n{done.stderr}"
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        assert result.pop("page_errors") == [], result
        return result

    return run


def _uploaded(admin: httpx.Client) -> None:
    if admin.get(f"/v1/flows/{FLOW}").status_code == 404:
        assert admin.put(f"/v1/flows/{FLOW}", content=STARTER.read_bytes()).status_code == 201


def test_console_is_served_without_a_key_and_its_api_calls_need_one(console: Stack) -> None:
    with console.client() as anonymous:
        shell = anonymous.get("/console/")
        assert shell.status_code == 200
        assert 'src="js/main.js"' in shell.text
        assert anonymous.get("/console", follow_redirects=False).headers["location"] == "/console/"
        assert anonymous.get("/console/vendor/htm-preact-standalone.module.js").status_code == 200
        assert anonymous.get("/v1/flows").status_code == 401


def test_upload_shows_problems_per_node_then_draws_the_starter(
    browse: Any, admin: httpx.Client, tmp_path: Path
) -> None:
    broken = json.loads(STARTER.read_text())
    for node in broken["data"]["nodes"]:
        if node["data"].get("type") == "LanguageModelComponent":
            node["data"]["type"] = "NoSuchModel"
    (bad := tmp_path / "broken.json").write_text(json.dumps(broken))
    admin.delete(f"/v1/flows/{FLOW}")

    seen = browse("upload", export=str(STARTER), bad_export=str(bad), flow_id=FLOW)

    assert any(
        "LanguageModelComponent-FLeYF" in p and "NoSuchModel" in p and "replace it" in p
        for p in seen["refused"]
    ), seen["refused"]
    assert "refused" in seen["alert"]
    assert seen["listed"] == 1
    assert admin.get(f"/v1/flows/{FLOW}").status_code == 200
    types = {label.split(" node ")[0] for label in seen["nodes"]}
    assert types == {"ChatInput", "Prompt", "LanguageModelComponent", "ChatOutput"}, seen
    assert seen["edges"] == 3
    assert seen["versions"] == 1


def test_chat_streams_tokens_then_the_run_page_shows_its_timeline(
    browse: Any, admin: httpx.Client, sim: httpx.Client
) -> None:
    _uploaded(admin)
    sim.put("/_sim/config", json={"token_s": 0.05, "tokens": 30})
    session = f"console-{uuid.uuid4().hex[:6]}"
    message = f"hello from the browser {session}"  # unique: a cached answer has no tokens

    # The starter's model does not stream; the tweaks editor turns streaming on.
    tweaks = {"LanguageModelComponent-FLeYF": {"stream": True}}

    chat = browse("chat", flow_id=FLOW, session_id=session, message=message, tweaks=tweaks)

    run = admin.get(f"/v1/runs/{chat['runId']}").json()
    assert run["status"] == "succeeded"
    assert run["session_id"] == session
    assert not run["cached"]
    assert run["tweaks"] == tweaks
    assert chat["final"] == run["output"]["text"]
    # Several growing partial answers were on screen before the last one: tokens arrived live.
    partial = [t for t in chat["seen"] if t != chat["final"]]
    assert len(partial) >= 3, chat["seen"]
    assert all(chat["final"].startswith(t) for t in partial)

    page = browse("timeline", flow_id=FLOW, run_id=run["id"])

    assert page["rows"] >= 1
    # From GET /v1/runs/{id}/timeline: queued → started → ... → finished.
    assert page["kinds"][0] == "queued", page["kinds"]
    assert page["kinds"][-1] == "finished", page["kinds"]
    assert "started" in page["kinds"]
    assert page["output"] == run["output"]["text"]
    assert page["input"] == message


def test_cancel_a_slow_run_from_its_page(
    browse: Any, admin: httpx.Client, sim: httpx.Client
) -> None:
    _uploaded(admin)
    sim.put("/_sim/config", json={"token_s": 0.2, "tokens": 300})  # a minute of tokens
    run_id = admin.post(f"/v1/flows/{FLOW}/runs", json={"input": "take your time"}).json()["id"]
    wait_for_run(admin, run_id, until={"running"})

    seen = browse("cancel", run_id=run_id)

    assert seen["status"] == "cancelled"
    assert seen["retry"] == 1
    assert wait_for_run(admin, run_id)["status"] == "cancelled"


def _dead_letter(console: Stack, admin_key: str) -> str:
    """A run its worker claims once past the delivery budget: failed, exhausted_retries.

    Submitted through an API whose queue no worker reads, its attempts set to the budget
    as if it had been started that many times, then delivered to the real worker.
    """
    idle_env = {
        **console.env,
        "FLOWFLEET_QUEUE_NAME": console.env["FLOWFLEET_QUEUE_NAME"] + "-idle",
    }
    idle = start_api(idle_env)
    try:
        with httpx.Client(base_url=idle.url, headers={"Authorization": f"Bearer {admin_key}"}) as c:
            run_id: str = c.post(f"/v1/flows/{FLOW}/runs", json={"input": "dead"}).json()["id"]
    finally:
        idle.stop()
    with psycopg.connect(console.env["FLOWFLEET_DATABASE_URL"], autocommit=True) as db:
        db.execute("UPDATE runs SET attempts = %s WHERE id = %s", (Settings().max_attempts, run_id))
    settings = Settings(
        redis_url=console.env["FLOWFLEET_REDIS_URL"], queue_name=console.env["FLOWFLEET_QUEUE_NAME"]
    )
    make_celery(settings).send_task(RUN_TASK, args=[run_id])
    return run_id


def test_retry_a_dead_letter_from_the_fleet_page(
    browse: Any, admin: httpx.Client, console: Stack, admin_key: str
) -> None:
    _uploaded(admin)
    dead = _dead_letter(console, admin_key)
    failed = wait_for_run(admin, dead)
    assert failed["error"]["code"] == "exhausted_retries"

    seen = browse("deadletter", run_id=dead)

    assert seen["charts"] == 4  # queue depth, runs/s, p50/p99 latency, error rate (uPlot)
    assert seen["alive"] == 1
    again = wait_for_run(admin, seen["retried_as"])
    assert again["status"] == "succeeded"
    assert again["input"] == "dead"


def test_admin_creates_and_revokes_a_key_and_others_see_no_keys_page(
    browse: Any, admin: httpx.Client, console: Stack
) -> None:
    name = f"console-{uuid.uuid4().hex[:6]}"

    seen = browse("keys", name=name)

    with as_key(console, seen["key"]) as revoked:
        deadline = time.monotonic() + 10  # other replicas' key caches; this one clears
        while revoked.get("/v1/flows").status_code != 401 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert revoked.get("/v1/flows").status_code == 401
    listed = {k["name"]: k for k in admin.get("/v1/keys").json()["items"]}
    assert listed[name]["revoked_at"] is not None

    reader = make_key(console, "runs:read", name="console-reader")
    assert browse("nonadmin", key=reader)["keys_link"] == 0


def test_runs_page_and_timeline_render_seeded_data_quickly(browse: Any) -> None:
    """200 runs and 2,000 timeline events rendered in the page (numbers in the README)."""
    seen = browse("bench", repeat=5)

    runs, timeline = (statistics.median(seen[k]) for k in ("runs_200_ms", "timeline_2000_ms"))
    sys.stderr.write(
        f"\nconsole render: runs 200 median {runs:.1f} ms {seen['runs_200_ms']}\n"
        f"console render: timeline 2000 median {timeline:.1f} ms {seen['timeline_2000_ms']}\n"
    )
    # Sanity bounds only; the README has the measured numbers.
    assert runs < 5000
    assert timeline < 5000
