"""Inbound triggers: another system's HTTP call runs a flow with its JSON body as the input;
and the schedules API, owner-scoped (their firing: tests/worker/test_schedules.py).

An API process with auth on, a real worker and llm-sim; the signed calls are made with
curl, as a caller's script would make them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.flows.coverage_nodes import node
from tests.flows.langflow_fixtures import load as _export
from tests.flows.langflow_nodes import edge
from tests.support.faults import isolated_stack
from tests.support.keys import Key, as_key, new_key
from tests.support.stack import Stack, wait_for_run

OWNER = "flows:write,runs:write,runs:read"


@pytest.fixture(scope="module")
def secure(infra: dict[str, str], llm_sim: str) -> Iterator[Stack]:
    with isolated_stack(llm_sim, infra["redis_url"], FLOWFLEET_AUTH_ENABLED="true") as stack:
        yield stack


@pytest.fixture(scope="module")
def owner(secure: Stack) -> Key:
    key = new_key(secure, OWNER, "trigger-owner")
    with as_key(secure, key.key) as c:
        assert c.put("/v1/flows/trig", json=_export("Basic Prompting.json")).status_code == 201
    return key


def _sign(secret: str, body: bytes, at: int | None = None) -> dict[str, str]:
    """The headers a sender computes: the outgoing webhooks' scheme, documented."""
    timestamp = str(int(time.time()) if at is None else at)
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return {
        "X-Flowfleet-Timestamp": timestamp,
        "X-Flowfleet-Signature": "sha256=" + mac.hexdigest(),
    }


def _curl(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """POST with curl; (status, headers lower-cased, body)."""
    args = ["curl", "-sS", "-i", "-X", "POST", url, "-H", "Content-Type: application/json"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*args, "--data-binary", "@-"], input=body, capture_output=True, check=True, timeout=30
    ).stdout.decode()
    head, _, text = out.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    status = int(lines[0].split()[1])
    found = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return status, found, text


def _secret(secure: Stack, owner: Key) -> str:
    with as_key(secure, owner.key) as c:
        issued = c.post("/v1/flows/trig/trigger-secret")
    assert issued.status_code == 201, issued.text
    assert issued.json()["trigger_url"] == "/v1/flows/trig/trigger"
    return str(issued.json()["secret"])


def _runs_of_flow(client: httpx.Client) -> int:
    return len(client.get("/v1/runs", params={"flow_id": "trig", "limit": 500}).json()["items"])


def test_signed_curl_with_a_json_body_runs_the_flow_with_that_body_as_input(
    secure: Stack, owner: Key
) -> None:
    secret = _secret(secure, owner)
    body = json.dumps({"event": "order.created", "order": {"id": 42, "items": ["a", "b"]}}).encode()
    status, headers, text = _curl(
        f"{secure.api.url}/v1/flows/trig/trigger", body, _sign(secret, body)
    )
    assert status == 202, text
    run = json.loads(text)
    assert headers["location"] == f"/v1/runs/{run['id']}"
    with as_key(secure, owner.key) as c:  # the run belongs to the secret's issuer
        finished = wait_for_run(c, run["id"], timeout=60)
    assert finished["status"] == "succeeded", finished
    assert finished["input"] == body.decode()  # the body, byte for byte, is the input
    assert json.loads(finished["input"]) == {
        "event": "order.created",
        "order": {"id": 42, "items": ["a", "b"]},
    }


def test_bad_signatures_are_401_problems_and_make_no_run(secure: Stack, owner: Key) -> None:
    secret = _secret(secure, owner)
    url = f"{secure.api.url}/v1/flows/trig/trigger"
    body = b'{"n": 1}'
    with as_key(secure, owner.key) as c:
        before = _runs_of_flow(c)
    good = _sign(secret, body)
    refused = {
        "wrong secret": _sign("fft_" + "0" * 64, body),
        "body changed after signing": {**_sign(secret, b'{"n": 2}')},
        "stale timestamp": _sign(secret, body, at=int(time.time()) - 3600),
        "no timestamp": {"X-Flowfleet-Signature": good["X-Flowfleet-Signature"]},
    }
    for why, headers in refused.items():
        status, found, text = _curl(url, body, headers)
        assert status == 401, (why, text)
        assert found["content-type"].startswith("application/problem+json"), why
        assert json.loads(text)["code"] == "unauthorized", why
    # The good one is taken once; the same signed request again is a replay.
    assert _curl(url, body, good)[0] == 202
    status, _, text = _curl(url, body, good)
    assert status == 401, text
    assert "replay" in json.loads(text)["detail"]
    # A signed request that was not taken (here: not JSON) may be sent again as it was.
    not_json = b"{oops"
    signed = _sign(secret, not_json)
    assert _curl(url, not_json, signed)[0] == 422
    assert _curl(url, not_json, signed)[0] == 422  # not 401: it was never taken
    # Issuing a new secret retires the old one.
    newer = _secret(secure, owner)
    assert _curl(url, body, _sign(secret, body))[0] == 401
    assert _curl(url, body, _sign(newer, body))[0] == 202
    with as_key(secure, owner.key) as c:
        assert _runs_of_flow(c) == before + 2  # only the two good calls made runs


def test_a_key_with_runs_write_triggers_and_others_cannot(secure: Stack, owner: Key) -> None:
    url = f"{secure.api.url}/v1/flows/trig/trigger"
    body = b'["any", "json", 1]'
    status, headers, text = _curl(url, body, {"Authorization": f"Bearer {owner.key}"})
    assert status == 202, text
    with as_key(secure, owner.key) as c:
        run = wait_for_run(c, json.loads(text)["id"], timeout=60)
    assert run["status"] == "succeeded", run
    assert run["input"] == body.decode()
    reader = new_key(secure, "runs:read", "reader")
    assert _curl(url, body, {"Authorization": f"Bearer {reader.key}"})[0] == 403
    assert _curl(url, body, {})[0] == 401
    # Not JSON: the caller learns what to fix.
    status, _, text = _curl(url, b"not json", {"Authorization": f"Bearer {owner.key}"})
    assert status == 422, text
    # Another tenant cannot issue a secret for the owner's flow: it looks missing.
    other = new_key(secure, OWNER, "other")
    with as_key(secure, other.key) as c:
        assert c.post("/v1/flows/trig/trigger-secret").status_code == 404


def _webhook_flow() -> dict[str, object]:
    """LangFlow's Webhook as the entry node: its Data parsed into text, no model."""
    nodes = [
        node("Webhook-1", "Webhook", data=("str", "", []), curl="", endpoint=""),
        node(
            "Parser-1",
            "ParserComponent",
            pattern="order {id} for {customer}",
            sep="\n",
            input_data=("other", "", ["DataFrame", "Data"]),
        ),
        node("ChatOutput-1", "ChatOutput", input_value=("str", "", ["Message"])),
    ]
    edges = [
        edge("Webhook-1", "output_data", "Parser-1", "input_data"),
        edge("Parser-1", "parsed_text", "ChatOutput-1", "input_value"),
    ]
    return {"name": "Webhook to text", "data": {"nodes": nodes, "edges": edges}}


def test_a_flow_starting_at_langflows_webhook_receives_the_body_as_its_data(
    secure: Stack, owner: Key
) -> None:
    with as_key(secure, owner.key) as c:
        uploaded = c.put("/v1/flows/hook", json=_webhook_flow())
        assert uploaded.status_code == 201, uploaded.text
        body = b'{"id": 42, "customer": "Ada"}'
        accepted = c.post(
            "/v1/flows/hook/trigger", content=body, headers={"Content-Type": "application/json"}
        )
        assert accepted.status_code == 202, accepted.text
        run = wait_for_run(c, accepted.json()["id"], timeout=60)
    assert run["status"] == "succeeded", run
    assert run["output"]["text"] == "order 42 for Ada"


def test_schedules_are_checked_owner_scoped_paused_and_deleted(secure: Stack, owner: Key) -> None:
    other = new_key(secure, OWNER, "schedule-other")
    yearly = {"flow_id": "trig", "cron": "0 0 1 1 *", "timezone": "Europe/Paris", "input": "hi"}
    with as_key(secure, owner.key) as c, as_key(secure, other.key) as o:
        for bad, field in (
            ({**yearly, "cron": "every day"}, "cron"),
            ({**yearly, "cron": "* * * *"}, "cron"),
            ({**yearly, "cron": "0 0 31 2 *"}, "never due"),
            ({**yearly, "timezone": "Mars/Olympus"}, "timezone"),
            ({**yearly, "tweaks": {"NoSuchNode": {"x": 1}}}, "tweaks"),
        ):
            refused = c.post("/v1/schedules", json=bad)
            assert refused.status_code == 422, refused.text
            assert field in refused.text
        assert c.post("/v1/schedules", json={**yearly, "flow_id": "nope"}).status_code == 404

        created = c.post("/v1/schedules", json=yearly)
        assert created.status_code == 201, created.text
        schedule = created.json()
        assert created.headers["location"] == f"/v1/schedules/{schedule['id']}"
        # 00:00 on 1 January in Paris is 23:00 UTC on 31 December.
        assert schedule["next_fire_at"].startswith(f"{schedule['next_fire_at'][:4]}-12-31T23:00")
        assert schedule["paused"] is False

        assert [s["id"] for s in c.get("/v1/schedules").json()["items"]] == [schedule["id"]]
        assert o.get("/v1/schedules").json()["items"] == []  # another key sees none of them
        for response in (
            o.get(f"/v1/schedules/{schedule['id']}"),
            o.patch(f"/v1/schedules/{schedule['id']}", json={"paused": True}),
            o.delete(f"/v1/schedules/{schedule['id']}"),
        ):
            assert response.status_code == 404
            assert response.json()["code"] == "schedule_not_found"

        paused = c.patch(f"/v1/schedules/{schedule['id']}", json={"paused": True})
        assert paused.status_code == 200, paused.text
        assert paused.json()["paused"] is True
        assert paused.json()["next_fire_at"] is None
        assert c.get(f"/v1/schedules/{schedule['id']}").json()["paused"] is True
        changed = c.patch(f"/v1/schedules/{schedule['id']}", json={"cron": "0 12 * * *"})
        assert changed.json()["cron"] == "0 12 * * *"
        assert c.delete(f"/v1/schedules/{schedule['id']}").status_code == 204
        assert c.get(f"/v1/schedules/{schedule['id']}").status_code == 404
        reader = new_key(secure, "runs:read", "schedule-reader")
        with as_key(secure, reader.key) as r:
            assert r.post("/v1/schedules", json=yearly).status_code == 403
