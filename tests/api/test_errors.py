"""Every error a client can cause is a 4xx problem+json with a stable code."""

from __future__ import annotations

import httpx
import pytest

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["detail"]
    return body


def test_unknown_flow_is_404_flow_not_found(client: httpx.Client) -> None:
    assert_problem(client.post("/v1/flows/nope/runs", json={"input": "x"}), 404, "flow_not_found")
    assert_problem(client.get("/v1/flows/nope"), 404, "flow_not_found")


def test_unknown_run_is_404_run_not_found(client: httpx.Client) -> None:
    assert_problem(client.get("/v1/runs/does-not-exist"), 404, "run_not_found")


def test_malformed_json_is_422(client: httpx.Client) -> None:
    response = client.post(
        "/v1/flows/prompt/runs", content=b"{not json", headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 422, "invalid_request")
    # It names the body and where the JSON breaks, not a field called "1".
    assert problem["errors"] == [
        {
            "field": "body",
            "message": "not valid JSON (Expecting property name enclosed in double quotes, "
            "at character 1); send a JSON object",
        }
    ]
    assert problem["detail"].startswith("body: not valid JSON")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": 42}, "input"),
        ({"input": "x", "tweaks": "no"}, "tweaks"),
        ({"input": "x", "session_id": "has spaces and !"}, "session_id"),
        ({"input": "x", "unknown": 1}, "unknown"),
    ],
)
def test_wrong_types_are_422_naming_the_field(client: httpx.Client, body: dict, field: str) -> None:
    problem = assert_problem(
        client.post("/v1/flows/prompt/runs", json=body), 422, "invalid_request"
    )
    assert field in [e["field"] for e in problem["errors"]]
    assert field in problem["detail"]


def test_body_over_limit_is_413(client: httpx.Client) -> None:
    big = {"input": "x" * (1024 * 1024 + 10)}
    assert_problem(client.post("/v1/flows/prompt/runs", json=big), 413, "payload_too_large")


def test_chunked_body_over_limit_is_413(client: httpx.Client) -> None:
    def chunks():
        yield b'{"input": "'
        for _ in range(70):
            yield b"y" * 16384
        yield b'"}'

    response = client.post(
        "/v1/flows/prompt/runs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")


def test_unknown_route_is_problem_json(client: httpx.Client) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404, "not_found")


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert client.get("/docs").status_code == 200
    assert "/v1/flows/{flow_id}/runs" in client.get("/openapi.json").json()["paths"]
