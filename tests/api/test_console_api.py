"""The API pieces the web console reads: keys, fleet, run timeline, flow graph and versions.

One stack with auth on (so scopes and tenancy are real), its own database and queue.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.flows.langflow_fixtures import load as _export
from tests.support.faults import isolated_stack
from tests.support.keys import as_key, make_key, new_key
from tests.support.stack import Stack


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
