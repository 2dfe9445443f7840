"""API keys, scopes, tenancy and rate limits, against an API process with auth on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis
from fastapi import APIRouter
from fastapi.routing import APIRoute

from api.app import create_app
from api.auth import ADMIN, declared, requires, route_needs
from flowfleet.llm_sim import reply_text
from shared.keys import SCOPES
from shared.settings import Settings
from tests.flows.langflow_fixtures import load as _export
from tests.support.faults import isolated_stack
from tests.support.keys import as_key, make_key
from tests.support.stack import TERMINAL, Stack

CHAT_SYSTEM = "You are a helpful assistant. Use the conversation so far."


@pytest.fixture(scope="module")
def secure(infra: dict[str, str], llm_sim: str) -> Iterator[Stack]:
    with isolated_stack(
        llm_sim,
        infra["redis_url"],
        FLOWFLEET_AUTH_ENABLED="true",
        FLOWFLEET_RATE_LIMIT_PER_S="10",
        FLOWFLEET_RATE_LIMIT_BURST="30",
        FLOWFLEET_METRICS_PUBLIC="false",
    ) as stack:
        yield stack


def finish(client: httpx.Client, run_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/v1/runs/{run_id}")
        if response.status_code == 200 and response.json()["status"] in TERMINAL:
            return response.json()  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def _routes(settings: Settings) -> list[APIRoute]:
    """Every API route of the app, as the guard sees it once it matched."""
    app = create_app(settings)
    try:  # newer FastAPI keeps included routers whole; this walks them as matching does
        from fastapi.routing import iter_route_contexts

        routes = [c.original_route for c in iter_route_contexts(app.routes)]
    except ImportError:  # older releases copy every included route into app.routes
        routes = list(app.routes)
    return [r for r in routes if isinstance(r, APIRoute)]


def test_every_route_declares_exactly_one_scope() -> None:
    """A route added without ``requires(...)`` fails here (and needs admin until fixed)."""
    settings = Settings(metrics_public=False)
    routes = _routes(settings)
    assert len(routes) > 10  # the enumeration found the app's routers
    undeclared, several, unknown, open_routes = [], [], [], []
    for route in routes:
        name = f"{sorted(route.methods)} {route.path}"
        scopes = [d.scope for d in declared(route.dependant)]
        if not scopes:
            undeclared.append(name)
        elif len(scopes) > 1:
            several.append(name)
        elif scopes[0] is None:
            open_routes.append(route.path)
        elif scopes[0] not in SCOPES:
            unknown.append(name)
    assert undeclared == [], "declare dependencies=[requires(<scope>)] on these routes"
    assert several == []
    assert unknown == []
    # Only the probes answer without a key; /metrics too, when metrics_public says so.
    assert sorted(open_routes) == ["/healthz", "/readyz"]
    metrics = next(r for r in routes if r.path == "/metrics")
    assert route_needs(metrics, settings) == {ADMIN}
    assert route_needs(metrics, Settings(metrics_public=True)) == frozenset()


def test_flows_writes_are_declared_flows_write_whatever_the_id() -> None:
    """The scope comes from the route that matched, so no flow id can change it."""
    settings = Settings()
    needs = {(m, r.path): route_needs(r, settings) for r in _routes(settings) for m in r.methods}
    assert needs[("PUT", "/v1/flows/{flow_id}")] == {"flows:write"}
    assert needs[("DELETE", "/v1/flows/{flow_id}")] == {"flows:write"}
    assert needs[("POST", "/v1/flows/{flow_id}/runs")] == {"runs:write"}
    assert needs[("GET", "/v1/flows")] == {"runs:read"}


def test_a_route_that_declares_nothing_needs_admin() -> None:
    router = APIRouter()

    @router.get("/forgotten")
    async def forgotten() -> None: ...

    @router.get("/declared", dependencies=[requires("runs:read")])
    async def declared_route() -> None: ...

    @router.get("/both", dependencies=[requires(None), requires("runs:write")])
    async def both() -> None: ...

    by_path = {r.path: r for r in router.routes if isinstance(r, APIRoute)}
    settings = Settings()
    assert route_needs(by_path["/forgotten"], settings) == {ADMIN}
    assert route_needs(by_path["/declared"], settings) == {"runs:read"}
    # Declarations only add up: an "open" one cannot loosen another.
    assert route_needs(by_path["/both"], settings) == {"runs:write"}


def test_no_key_or_unknown_key_is_401_and_health_stays_open(secure: Stack) -> None:
    with secure.client() as anonymous:
        missing = anonymous.post("/v1/flows/prompt/runs", json={"input": "hi"})
        assert missing.status_code == 401
        assert missing.json()["code"] == "unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        assert anonymous.get("/v1/runs").status_code == 401
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/readyz").status_code == 200
    with as_key(secure, "ff_not-a-real-key") as wrong:
        assert wrong.get("/v1/runs").json()["code"] == "unauthorized"


def test_private_metrics_need_admin(secure: Stack) -> None:
    with secure.client() as anonymous:
        assert anonymous.get("/metrics").status_code == 401
    with as_key(secure, make_key(secure, "runs:read,runs:write,flows:write")) as tenant:
        refused = tenant.get("/metrics")
        assert refused.status_code == 403
        assert refused.json()["required_scope"] == "admin"
    with as_key(secure, make_key(secure, "admin")) as admin:
        scraped = admin.get("/metrics")
        assert scraped.status_code == 200
        assert "flowfleet_" in scraped.text


def test_wrong_scope_is_403(secure: Stack) -> None:
    with as_key(secure, make_key(secure, "runs:read")) as reader:
        refused = reader.post("/v1/flows/prompt/runs", json={"input": "hi"})
        assert refused.status_code == 403
        assert refused.json()["code"] == "insufficient_scope"
        assert reader.get("/v1/runs").status_code == 200
    with as_key(secure, make_key(secure, "runs:write,runs:read")) as writer:
        assert writer.put("/v1/flows/mine", json={}).status_code == 403
        assert writer.delete("/v1/flows/prompt").status_code == 403
    with as_key(secure, make_key(secure, "flows:write")) as author:
        # Past the scope check: the (empty) export itself is what is refused.
        assert author.put("/v1/flows/mine", json={}).json()["code"] == "invalid_flow"


# Ids that once needed only runs:write, because the URL text contained "/runs".
FLOW_IDS = ["prompt", "runs", "runs-evil", "evil-runs", "runs.x", "a_runs_b", "RUNS"]


def test_a_runs_scoped_key_gets_403_on_every_flows_write(secure: Stack) -> None:
    export = _export("Basic Prompting.json")
    with as_key(secure, make_key(secure, "admin")) as admin:
        for flow_id in FLOW_IDS[1:]:  # existing flows, so a DELETE would have something to do
            assert admin.put(f"/v1/flows/{flow_id}", json=export).status_code in (200, 201)
    for scopes in ("runs:write,runs:read", "runs:write", "runs:read"):
        with as_key(secure, make_key(secure, scopes)) as runner:
            for flow_id in FLOW_IDS:
                replaced = runner.put(f"/v1/flows/{flow_id}", json=export)
                assert replaced.status_code == 403, (scopes, flow_id, replaced.text)
                assert replaced.json()["code"] == "insufficient_scope"
                assert replaced.json()["required_scope"] == "flows:write"
                deleted = runner.delete(f"/v1/flows/{flow_id}")
                assert deleted.status_code == 403, (scopes, flow_id, deleted.text)
                assert deleted.json()["code"] == "insufficient_scope"
    with as_key(secure, make_key(secure, "runs:read")) as reader:
        still = {f["id"] for f in reader.get("/v1/flows").json()["items"]}
    assert set(FLOW_IDS) <= still  # nothing was deleted


def test_a_key_sees_only_its_own_runs_and_sessions(secure: Stack, sim: httpx.Client) -> None:
    key_a = make_key(secure, "runs:write,runs:read", "a")
    key_b = make_key(secure, "runs:write,runs:read", "b")
    with as_key(secure, key_a) as a, as_key(secure, key_b) as b:
        run_a = finish(
            a,
            a.post("/v1/flows/chat/runs", json={"input": "A's secret", "session_id": "s1"}).json()[
                "id"
            ],
        )
        assert run_a["status"] == "succeeded"

        assert b.get(f"/v1/runs/{run_a['id']}").json()["code"] == "run_not_found"
        assert b.get(f"/v1/runs/{run_a['id']}").status_code == 404
        assert b.get("/v1/sessions/s1/messages").json()["messages"] == []
        assert run_a["id"] not in [r["id"] for r in b.get("/v1/runs").json()["items"]]
        assert b.post(f"/v1/runs/{run_a['id']}/retry").status_code == 404
        assert b.delete("/v1/sessions/s1").status_code == 204  # deletes nothing of A's
        assert len(a.get("/v1/sessions/s1/messages").json()["messages"]) == 2

        # Same session id under key B: A's history never reaches B's model call.
        sim.delete("/_sim/requests")
        run_b = finish(
            b,
            b.post(
                "/v1/flows/chat/runs", json={"input": "what was said?", "session_id": "s1"}
            ).json()["id"],
        )
        only_b = [
            {"role": "system", "content": CHAT_SYSTEM},
            {"role": "user", "content": "what was said?"},
        ]
        assert run_b["output"]["text"] == reply_text(only_b)
    with as_key(secure, make_key(secure, "admin")) as admin:
        assert admin.get(f"/v1/runs/{run_a['id']}").status_code == 200
    assert key_a not in secure.api.output()  # keys never reach the logs


def test_burst_over_the_limit_gets_429_with_retry_after(secure: Stack) -> None:
    # Sent 20 at a time, so the burst is spent faster than 10/s refills it even on a busy host.
    with (
        as_key(secure, make_key(secure, "runs:read")) as client,
        ThreadPoolExecutor(max_workers=20) as pool,
    ):
        responses = list(pool.map(lambda _: client.get("/v1/runs?limit=1"), range(60)))
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    print(f"\n[rate limit] sent=60 ok={len(ok)} limited={len(limited)} (burst 30, 10/s)")  # noqa: T201
    assert ok
    assert limited
    assert ok[0].headers["ratelimit-limit"] == "30"
    first = limited[0]
    assert first.json()["code"] == "rate_limited"
    assert int(first.headers["retry-after"]) >= 1
    assert first.headers["ratelimit-remaining"] == "0"
    assert "ratelimit-reset" in first.headers


def test_limit_still_counts_after_redis_forgets_its_scripts(secure: Stack) -> None:
    """A restarted or flushed Redis has no script cache: the limiter loads it again."""
    with as_key(secure, make_key(secure, "runs:read", name="flush")) as client:
        assert client.get("/v1/runs?limit=1").headers["ratelimit-remaining"] == "29"
        r = redis.Redis.from_url(secure.env["FLOWFLEET_REDIS_URL"])
        r.script_flush()
        r.close()
        again = client.get("/v1/runs?limit=1")
    assert again.status_code == 200
    assert int(again.headers["ratelimit-remaining"]) in (28, 29)  # refilled ~0.1 token at most


def test_queue_cap_answers_503_queue_full(infra: dict[str, str], llm_sim: str) -> None:
    # No worker: everything submitted stays queued, so the cap is what refuses.
    with (
        isolated_stack(
            llm_sim, infra["redis_url"], workers=0, FLOWFLEET_MAX_QUEUED_PER_FLOW="3"
        ) as stack,
        stack.client() as client,
    ):
        codes = [
            client.post("/v1/flows/prompt/runs", json={"input": f"n{i}"}).status_code
            for i in range(5)
        ]
        assert codes[:3] == [202, 202, 202]
        refused = client.post("/v1/flows/prompt/runs", json={"input": "one more"})
        assert refused.status_code == 503
        assert refused.json()["code"] == "queue_full"
        assert refused.headers["retry-after"]
        assert client.post("/v1/flows/chat/runs", json={"input": "other flow"}).status_code == 202


def test_retention_policies_are_admin_only_and_round_trip(secure: Stack) -> None:
    with as_key(secure, make_key(secure, "runs:write,runs:read,flows:write")) as user:
        assert user.put("/v1/retention/someone", json={"runs_days": 1}).status_code == 403
        assert user.get("/v1/retention/someone").status_code == 403
    with as_key(secure, make_key(secure, ADMIN)) as admin:
        missing = admin.get("/v1/retention/someone")
        assert missing.status_code == 404
        assert missing.json()["code"] == "retention_policy_not_found"
        body = {"runs_days": 7, "messages_days": 0, "session_max_turns": 50}
        put = admin.put("/v1/retention/someone", json=body)
        assert put.status_code == 200
        expected = {
            "owner": "someone",
            "runs_days": 7.0,
            "events_days": None,  # follows the setting
            "messages_days": 0.0,  # forever
            "dead_letters_days": None,
            "session_max_turns": 50,
        }
        assert put.json() == expected
        assert admin.get("/v1/retention/someone").json() == expected
        # A PUT replaces the whole policy: what it leaves out follows the settings again.
        assert admin.put("/v1/retention/someone", json={"events_days": 3}).json() == {
            **{k: None for k in expected},
            "owner": "someone",
            "events_days": 3.0,
        }
        assert admin.put("/v1/retention/someone", json={"runs_days": -1}).status_code == 422
        assert admin.delete("/v1/retention/someone").status_code == 204
        assert admin.get("/v1/retention/someone").status_code == 404
        assert admin.delete("/v1/retention/someone").status_code == 404
