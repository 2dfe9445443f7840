"""The API pieces the web console reads: keys, fleet, run timeline, flow graph and versions.

One stack with auth on (so scopes and tenancy are real), its own database and queue.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert

from shared.db import create_engine
from shared.models import RunStep
from shared.settings import Settings
from tests.flows.langflow_fixtures import load as _export
from tests.support.faults import isolated_stack
from tests.support.keys import as_key, make_key, new_key
from tests.support.stack import Stack, wait_for_run


@pytest.fixture(scope="module")
def console(infra: dict[str, str], llm_sim: str) -> Iterator[Stack]:
    with isolated_stack(
        llm_sim,
        infra["redis_url"],
        FLOWFLEET_AUTH_ENABLED="true",
        FLOWFLEET_KEY_CACHE_S="30",  # long: a revoke must not rely on the cache expiring
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def admin(console: Stack) -> Iterator[httpx.Client]:
    with as_key(console, make_key(console, "admin", name="console-admin")) as client:
        yield client


# Keys


def test_admin_creates_a_key_that_works_at_once_and_is_its_own_owner(
    console: Stack, admin: httpx.Client
) -> None:
    created = admin.post("/v1/keys", json={"name": "ci bot", "scopes": ["runs:read", "runs:write"]})

    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) >= {"id", "name", "scopes", "key", "created_at"}
    assert body["name"] == "ci bot"
    assert body["scopes"] == ["runs:read", "runs:write"]
    assert body["key"].startswith("ff_")
    with as_key(console, body["key"]) as bot:
        run = bot.post("/v1/flows/prompt/runs", json={"input": "hi"})
        assert run.status_code == 202, run.text
        assert bot.get("/v1/runs").json()["items"][0]["id"] == run.json()["id"]
        # Only its own runs: a run of another key stays invisible to it.
        other = admin.post("/v1/flows/prompt/runs", json={"input": "admin's"}).json()
        assert bot.get(f"/v1/runs/{other['id']}").status_code == 404
    # The admin sees every owner's runs, the bot's included.
    listed = {r["id"] for r in admin.get("/v1/runs", params={"limit": 500}).json()["items"]}
    assert {run.json()["id"], other["id"]} <= listed


def test_key_list_shows_scopes_and_revocation_never_the_secret(
    console: Stack, admin: httpx.Client
) -> None:
    made = new_key(console, "runs:read", name="listed")

    items = admin.get("/v1/keys").json()["items"]

    mine = next(k for k in items if k["id"] == made.id)
    assert mine == {
        "id": made.id,
        "name": "listed",
        "scopes": ["runs:read"],
        "created_at": mine["created_at"],
        "revoked_at": None,
    }
    text = admin.get("/v1/keys").text
    assert made.key not in text
    assert "hash" not in text


def test_revoke_refuses_the_key_at_once_and_is_idempotent(
    console: Stack, admin: httpx.Client
) -> None:
    made = new_key(console, "runs:read", name="to revoke")
    with as_key(console, made.key) as doomed:
        assert doomed.get("/v1/runs").status_code == 200  # cached as valid now

        assert admin.delete(f"/v1/keys/{made.id}").status_code == 204

        refused = doomed.get("/v1/runs")
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthorized"
    assert admin.delete(f"/v1/keys/{made.id}").status_code == 204  # again: still 204
    listed = next(k for k in admin.get("/v1/keys").json()["items"] if k["id"] == made.id)
    assert listed["revoked_at"] is not None


def test_key_errors_are_problems_with_codes(admin: httpx.Client) -> None:
    unknown = admin.post("/v1/keys", json={"name": "x", "scopes": ["runs:read", "root"]})
    assert unknown.status_code == 422
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["code"] == "unknown_scope"
    assert "admin" in unknown.json()["allowed"]

    for bad in ({"name": "", "scopes": ["runs:read"]}, {"name": "n" * 101, "scopes": ["admin"]}):
        refused = admin.post("/v1/keys", json=bad)
        assert refused.status_code == 422
        assert refused.json()["code"] == "invalid_request"
    assert admin.post("/v1/keys", json={"name": "x", "scopes": []}).status_code == 422

    missing = admin.delete("/v1/keys/0123456789abcdef")
    assert missing.status_code == 404
    assert missing.json()["code"] == "key_not_found"


def test_keys_need_admin(console: Stack) -> None:
    with as_key(console, make_key(console, "runs:read,runs:write,flows:write")) as tenant:
        for response in (
            tenant.get("/v1/keys"),
            tenant.post("/v1/keys", json={"name": "x", "scopes": ["admin"]}),
            tenant.delete("/v1/keys/whatever"),
        ):
            assert response.status_code == 403
            assert response.json()["code"] == "insufficient_scope"


# Flows: graph and versions


def test_flow_answers_its_graph_with_node_types_positions_and_edges(console: Stack) -> None:
    export = _export("Basic Prompting.json")
    with as_key(console, make_key(console, "runs:read,flows:write")) as author:
        assert author.put("/v1/flows/drawn", json=export).status_code == 201

        graph = author.get("/v1/flows/drawn").json()["graph"]

    exported = {n["id"]: n for n in export["data"]["nodes"]}
    assert {n["id"] for n in graph["nodes"]} == set(exported)
    for node in graph["nodes"]:
        raw = exported[node["id"]]
        assert node["type"] == raw["data"].get("type", raw["type"])  # a note has no data.type
        assert node["position"] == {
            "x": float(raw["position"]["x"]),
            "y": float(raw["position"]["y"]),
        }
    kinds = {n["type"]: n["kind"] for n in graph["nodes"]}
    assert kinds["ChatInput"] == "ChatInput"
    assert {(e["source"], e["target"]) for e in graph["edges"]} == {
        (e["source"], e["target"]) for e in export["data"]["edges"]
    }
    assert all(e["target_field"] for e in graph["edges"])
    # Drawing needs no templates (nor the code they embed): only these fields travel.
    drawn = {"id", "type", "node_type", "display_name", "description", "kind", "position"}
    assert all(set(n) == drawn | {"width", "height"} for n in graph["nodes"])


def test_flow_versions_list_newest_first_with_the_current_one_marked(console: Stack) -> None:
    first = _export("Basic Prompting.json")
    second = _export("Basic Prompting.json")
    second["description"] = "second version"
    with as_key(console, make_key(console, "runs:read,flows:write")) as author:
        v1 = author.put("/v1/flows/versioned", json=first).json()["version"]
        v2 = author.put("/v1/flows/versioned", json=second).json()["version"]
        assert v1 != v2

        listed = author.get("/v1/flows/versioned/versions")

        assert listed.status_code == 200
        body = listed.json()
        assert body["flow_id"] == "versioned"
        assert [(v["version"], v["current"]) for v in body["items"]] == [(v2, True), (v1, False)]
        assert all(v["kind"] == "langflow" and v["created_at"] for v in body["items"])
        missing = author.get("/v1/flows/no-such-flow/versions")
        assert missing.status_code == 404
        assert missing.json()["code"] == "flow_not_found"
    with as_key(console, make_key(console, "runs:read")) as stranger:
        assert stranger.get("/v1/flows/versioned/versions").status_code == 404


# Run timeline


def test_timeline_walks_a_run_from_queued_to_its_end_for_its_owner_only(
    console: Stack, admin: httpx.Client
) -> None:
    with as_key(console, make_key(console, "runs:read,runs:write")) as tenant:
        run_id = tenant.post("/v1/flows/prompt/runs", json={"input": "Timeline?"}).json()["id"]
        done = wait_for_run(tenant, run_id)
        assert done["status"] == "succeeded"

        timeline = tenant.get(f"/v1/runs/{run_id}/timeline")

        assert timeline.status_code == 200
        body = timeline.json()
        assert (body["run_id"], body["status"], body["attempts"]) == (run_id, "succeeded", 1)
        kinds = [i["kind"] for i in body["items"]]
        assert kinds[:2] == ["queued", "started"]
        assert kinds[-2:] == ["token_summary", "finished"]
        ats = [i["at"] for i in body["items"]]
        assert ats == sorted(ats)
        assert body["items"][0]["detail"]["input"] == "Timeline?"
        assert body["items"][-1]["detail"]["output"] == done["output"]
        assert body["items"][-2]["detail"]["total_tokens"] == done["usage"]["total_tokens"]
        # Another key's run looks like a missing one; the admin sees every owner's.
        other = admin.post("/v1/flows/prompt/runs", json={"input": "not yours"}).json()["id"]
        hidden = tenant.get(f"/v1/runs/{other}/timeline")
        assert hidden.status_code == 404
        assert hidden.json()["code"] == "run_not_found"
    assert admin.get(f"/v1/runs/{run_id}/timeline").status_code == 200


def test_timeline_of_a_failed_run_ends_with_its_error(console: Stack, admin: httpx.Client) -> None:
    with httpx.Client(base_url=console.sim_url) as sim:
        sim.put("/_sim/config", json={"error_rate": 1.0, "error_status": [400]})
        try:
            run_id = admin.post("/v1/flows/prompt/runs", json={"input": "boom"}).json()["id"]
            done = wait_for_run(admin, run_id)
        finally:
            sim.put("/_sim/config", json={"error_rate": 0})
    last = admin.get(f"/v1/runs/{run_id}/timeline").json()["items"][-1]
    assert last["kind"] == "failed"
    assert last["detail"]["code"] == done["error"]["code"]
    assert last["detail"]["message"] == done["error"]["message"]


async def test_timeline_of_2000_steps_answers_them_all_in_order(
    console: Stack, admin: httpx.Client
) -> None:
    run_id = admin.post("/v1/flows/prompt/runs", json={"input": "many steps"}).json()["id"]
    wait_for_run(admin, run_id)
    engine = create_engine(Settings(database_url=console.env["FLOWFLEET_DATABASE_URL"]))
    start = datetime.now(UTC)
    rows = []
    for i in range(2000):
        kind = ("tool_call", "tool_result")[i % 2]
        rows.append(
            {
                "run_id": run_id,
                "attempt": 1 if i < 1000 else 2,
                "kind": kind,
                "tool_call_id": f"call-{i // 2}",
                "name": "search",
                "data": {"id": f"call-{i // 2}", "name": "search", "n": i},
                "created_at": start + timedelta(milliseconds=i),
            }
        )
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(RunStep), rows)
    finally:
        await engine.dispose()

    began = time.perf_counter()
    timeline = admin.get(f"/v1/runs/{run_id}/timeline")
    took = time.perf_counter() - began

    assert timeline.status_code == 200
    items = timeline.json()["items"]
    steps = [i for i in items if i["kind"] in ("tool_call", "tool_result")]
    assert [s["detail"]["n"] for s in steps] == list(range(2000))
    attempts = [i for i in items if i["kind"] == "attempt"]
    assert [(a["title"], a["attempt"]) for a in attempts] == [("Attempt 2", 2)]
    assert timeline.json()["truncated"] is False
    assert took < 5  # a sanity bound on a shared 2-core machine; measured far below
    # The steps endpoint is unchanged by the timeline: the same 2,000 tool steps.
    assert len(admin.get(f"/v1/runs/{run_id}/steps").json()["items"]) == 2000


# Fleet


def test_fleet_shows_the_live_worker_the_queue_samples_and_this_minutes_runs(
    console: Stack, admin: httpx.Client
) -> None:
    run_id = admin.post("/v1/flows/prompt/runs", json={"input": "fleet"}).json()["id"]
    wait_for_run(admin, run_id)
    deadline = time.monotonic() + 15
    while True:  # the sweep leader samples the queue once per sweep (1 s here)
        body = admin.get("/v1/fleet", params={"minutes": 3}).json()
        if body["series"][-1]["queue_depth"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    assert isinstance(body["queue_depth"], int)
    assert len(body["series"]) == 3
    last = body["series"][-1]
    assert set(last) >= {
        "t", "submitted", "finished", "failed", "runs_per_s",
        "p50_ms", "p99_ms", "error_rate", "queue_depth",
    }  # fmt: skip
    assert last["queue_depth"] is not None
    assert sum(m["submitted"] for m in body["series"]) >= 1
    assert sum(m["finished"] for m in body["series"]) >= 1
    assert any(m["p50_ms"] for m in body["series"])
    live = [w for w in body["workers"] if w["alive"]]
    assert len(live) == 1
    assert live[0]["id"]
    assert live[0]["last_seen"]
    assert isinstance(body["dead_letters"], int)
    assert len(admin.get("/v1/fleet").json()["series"]) == 60  # the default hour


def test_fleet_needs_admin_and_a_window_of_1_to_1440_minutes(
    console: Stack, admin: httpx.Client
) -> None:
    for minutes in (0, 1441):
        refused = admin.get("/v1/fleet", params={"minutes": minutes})
        assert refused.status_code == 422
        assert refused.json()["code"] == "invalid_request"
    assert len(admin.get("/v1/fleet", params={"minutes": 1440}).json()["series"]) == 1440
    with as_key(console, make_key(console, "runs:read,runs:write")) as tenant:
        assert tenant.get("/v1/fleet").json()["code"] == "insufficient_scope"
