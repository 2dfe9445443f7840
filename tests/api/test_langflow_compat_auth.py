"""LangFlow's ``x-api-key`` header names flowfleet's keys: langflow-sdk against an API with
auth on, with the same scopes and tenancy as a Bearer key."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from langflow_sdk import Client
from langflow_sdk.exceptions import LangflowAuthError, LangflowNotFoundError

from tests.flows.langflow_fixtures import load as _export
from tests.support.faults import isolated_stack
from tests.support.keys import as_key, make_key
from tests.support.stack import Stack


@pytest.fixture(scope="module")
def secure(infra: dict[str, str], llm_sim: str) -> Iterator[Stack]:
    with isolated_stack(llm_sim, infra["redis_url"], FLOWFLEET_AUTH_ENABLED="true") as stack:
        yield stack


def test_sdk_key_in_x_api_key_runs_and_lists(secure: Stack) -> None:
    key = make_key(secure, "runs:read,runs:write")

    with Client(secure.api.url, api_key=key) as lf:
        result = lf.run("prompt", input_value="keyed")
        names = {f.endpoint_name for f in lf.list_flows()}

    assert (result.first_text_output() or "").startswith("You said: keyed")
    assert "prompt" in names


def test_missing_unknown_or_underscoped_key_is_refused(secure: Stack) -> None:
    for key in (None, "ff_not-a-real-key"):
        with Client(secure.api.url, api_key=key) as lf, pytest.raises(LangflowAuthError) as info:
            lf.run("prompt", input_value="x")
        assert info.value.status_code == 401
    with Client(secure.api.url, api_key=make_key(secure, "runs:read")) as reader:
        with pytest.raises(LangflowAuthError) as info:
            reader.run("prompt", input_value="x")
        assert info.value.status_code == 403
        assert reader.list_flows()  # reading is what this key may do


def test_another_keys_flow_is_invisible_by_id_and_by_uuid(secure: Stack) -> None:
    author = make_key(secure, "runs:read,runs:write,flows:write")
    with as_key(secure, author) as c:
        put = c.put("/v1/flows/lf-private", json=_export("Basic Prompting.json"))
        assert put.status_code == 201, put.text
    with Client(secure.api.url, api_key=author) as mine:
        listed = next(f for f in mine.list_flows() if f.endpoint_name == "lf-private")

    other = make_key(secure, "runs:read,runs:write")
    with Client(secure.api.url, api_key=other) as lf:
        assert "lf-private" not in {f.endpoint_name for f in lf.list_flows()}
        for name in ("lf-private", str(listed.id)):
            with pytest.raises(LangflowNotFoundError):
                lf.run(name, input_value="x")


def test_bearer_wins_over_x_api_key(secure: Stack) -> None:
    """One key per request: a valid Bearer with a bad x-api-key is the Bearer's caller."""
    key = make_key(secure, "runs:read")
    headers = {"Authorization": f"Bearer {key}", "x-api-key": "ff_not-a-real-key"}
    with httpx.Client(base_url=secure.api.url, headers=headers, timeout=30) as c:
        assert c.get("/api/v1/flows/").status_code == 200
