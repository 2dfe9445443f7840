"""Flows have owners: a key reaches its own flows and the shared ones, never another key's.

Two real keys against an API process with auth on, over HTTP, with a real worker.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest

from api.app import sync_flows_dir
from shared.db import create_engine, session_factory
from shared.settings import Settings
from tests.flows.langflow_fixtures import load as _export
from tests.support.faults import isolated_stack
from tests.support.fixtures import LANGFLOW_FIXTURES
from tests.support.keys import Key, as_key, new_key
from tests.support.stack import Stack, wait_for_run

TENANT = "flows:write,runs:write,runs:read"


@pytest.fixture(scope="module")
def secure(infra: dict[str, str], llm_sim: str) -> Iterator[Stack]:
    with isolated_stack(llm_sim, infra["redis_url"], FLOWFLEET_AUTH_ENABLED="true") as stack:
        yield stack


@pytest.fixture(scope="module")
def keys(secure: Stack) -> dict[str, Key]:
    return {
        "a": new_key(secure, TENANT, "tenant-a"),
        "b": new_key(secure, TENANT, "tenant-b"),
        "admin": new_key(secure, "admin", "operator"),
    }


def _flow_ids(client: httpx.Client) -> set[str]:
    listed = client.get("/v1/flows")
    assert listed.status_code == 200, listed.text
    return {f["id"] for f in listed.json()["items"]}


def _upload(
    client: httpx.Client, flow_id: str, name: str = "Basic Prompting.json"
) -> httpx.Response:
    return client.put(f"/v1/flows/{flow_id}", json=_export(name))


def test_another_tenants_flow_is_invisible_and_untouchable(
    secure: Stack, keys: dict[str, Key]
) -> None:
    with as_key(secure, keys["a"].key) as a, as_key(secure, keys["b"].key) as b:
        created = _upload(a, "a-private")
        assert created.status_code == 201, created.text
        assert created.json()["owner"] == keys["a"].id
        version = created.json()["version"]

        # Reading: exactly what a missing flow looks like.
        for response in (b.get("/v1/flows/a-private"), b.delete("/v1/flows/a-private")):
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "flow_not_found"
        assert "a-private" not in _flow_ids(b)
        assert "a-private" not in {m["id"] for m in b.get("/v1/models").json()["data"]}

        # Submitting: 404 flow_not_found at every entry point, never a 403 that confirms it.
        submit = b.post("/v1/flows/a-private/runs", json={"input": "hi"})
        assert submit.status_code == 404
        assert submit.json()["code"] == "flow_not_found"
        batch = b.post("/v1/flows/a-private/runs:batch", json={"inputs": [{"input": "hi"}]})
        assert batch.status_code == 404
        assert batch.json()["code"] == "flow_not_found"
        chat = b.post(
            "/v1/chat/completions",
            json={"model": "a-private", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert chat.status_code == 404
        assert chat.json()["error"]["code"] == "model_not_found"

        # Replacing: the id is taken (409), and A's flow is unchanged.
        replaced = _upload(b, "a-private", "Memory Chatbot.json")
        assert replaced.status_code == 409, replaced.text
        assert replaced.json()["code"] == "flow_id_taken"

        mine = a.get("/v1/flows/a-private").json()
        assert mine["version"] == version
        assert mine["owner"] == keys["a"].id
        assert "a-private" in _flow_ids(a)
        run = a.post("/v1/flows/a-private/runs", json={"input": "still mine"})
        assert run.status_code == 202, run.text
        assert wait_for_run(a, run.json()["id"])["status"] == "succeeded"


def test_shared_flows_are_run_by_every_key_and_changed_only_by_admins(
    secure: Stack, keys: dict[str, Key]
) -> None:
    with (
        as_key(secure, keys["b"].key) as b,
        as_key(secure, keys["admin"].key) as admin,
    ):
        shared = b.get("/v1/flows/prompt")  # from the flows directory
        assert shared.status_code == 200
        assert shared.json()["owner"] == "system"
        version = shared.json()["version"]

        for response in (_upload(b, "prompt"), b.delete("/v1/flows/prompt")):
            assert response.status_code == 403, response.text
            assert response.json()["code"] == "insufficient_scope"
            assert response.json()["required_scope"] == "admin"
        assert b.get("/v1/flows/prompt").json()["version"] == version
        run = b.post("/v1/flows/prompt/runs", json={"input": "shared"})
        assert run.status_code == 202
        assert wait_for_run(b, run.json()["id"])["status"] == "succeeded"

        # An admin's upload is a shared flow: every key sees and runs it.
        published = _upload(admin, "house-style")
        assert published.status_code == 201, published.text
        assert published.json()["owner"] == "system"
        assert "house-style" in _flow_ids(b)
        assert b.post("/v1/flows/house-style/runs", json={"input": "hi"}).status_code == 202
        assert admin.delete("/v1/flows/house-style").status_code == 204
        assert "house-style" not in _flow_ids(b)


def test_admin_sees_and_manages_every_tenants_flows(secure: Stack, keys: dict[str, Key]) -> None:
    with (
        as_key(secure, keys["a"].key) as a,
        as_key(secure, keys["b"].key) as b,
        as_key(secure, keys["admin"].key) as admin,
    ):
        assert _upload(a, "a-only").status_code == 201
        assert _upload(b, "b-only").status_code == 201
        assert "b-only" not in _flow_ids(a)
        assert "a-only" not in _flow_ids(b)
        everything = {f["id"]: f["owner"] for f in admin.get("/v1/flows").json()["items"]}
        assert everything["a-only"] == keys["a"].id
        assert everything["b-only"] == keys["b"].id
        assert everything["prompt"] == "system"

        # An admin's replacement keeps the owner; its delete works on anyone's flow.
        replaced = _upload(admin, "b-only", "Memory Chatbot.json")
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["owner"] == keys["b"].id
        assert b.get("/v1/flows/b-only").json()["version"] == replaced.json()["version"]
        assert admin.delete("/v1/flows/a-only").status_code == 204
        assert a.get("/v1/flows/a-only").status_code == 404


def test_a_freed_id_taken_by_another_tenant_is_not_reached_by_old_runs(
    secure: Stack, keys: dict[str, Key]
) -> None:
    """A retry resolves the flow again, as its caller: another tenant's flow is not found."""
    with as_key(secure, keys["a"].key) as a, as_key(secure, keys["b"].key) as b:
        assert _upload(a, "passed-on").status_code == 201
        first = a.post("/v1/flows/passed-on/runs", json={"input": "once"})
        assert wait_for_run(a, first.json()["id"])["status"] == "succeeded"
        assert a.delete("/v1/flows/passed-on").status_code == 204
        # B may now take the id; it is B's alone.
        taken = _upload(b, "passed-on", "Memory Chatbot.json")
        assert taken.status_code == 201, taken.text
        assert taken.json()["owner"] == keys["b"].id

        retried = a.post(f"/v1/runs/{first.json()['id']}/retry")
        assert retried.status_code == 404, retried.text
        assert retried.json()["code"] == "flow_not_found"
        assert a.get("/v1/flows/passed-on").status_code == 404


async def test_the_flows_directory_never_takes_over_a_keys_id(
    secure: Stack, keys: dict[str, Key], tmp_path: Path
) -> None:
    """An API start syncs the directory as shared flows, but leaves an id a key owns alone."""
    with as_key(secure, keys["a"].key) as a:
        owned = _upload(a, "dir-clash", "Memory Chatbot.json")
        assert owned.status_code == 201, owned.text
    for flow_id in ("dir-clash", "dir-new"):
        shutil.copy(LANGFLOW_FIXTURES / "Basic Prompting.json", tmp_path / f"{flow_id}.json")
    settings = Settings(database_url=secure.env["FLOWFLEET_DATABASE_URL"], flows_dir=tmp_path)
    engine = create_engine(settings)
    try:
        state = SimpleNamespace(settings=settings, sessions=session_factory(engine))
        await sync_flows_dir(cast(Any, state))  # what each API replica does at start
    finally:
        await engine.dispose()
    with as_key(secure, keys["a"].key) as a, as_key(secure, keys["b"].key) as b:
        kept = a.get("/v1/flows/dir-clash").json()
        assert kept["owner"] == keys["a"].id
        assert kept["version"] == owned.json()["version"]
        assert b.get("/v1/flows/dir-clash").status_code == 404
        assert b.get("/v1/flows/dir-new").json()["owner"] == "system"
