"""Settings that guard production, log redaction, and request-model properties."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.limits import check_run_limits
from shared.errors import PayloadTooLarge
from shared.logging import redact_secrets
from shared.schemas import SESSION_ID_PATTERN, RunCreate
from shared.settings import Settings


def test_auth_defaults_on_in_production_and_cannot_be_turned_off_there() -> None:
    assert Settings(env="production", webhook_secret="s3cret-for-tests").auth_on
    assert not Settings(env="embedded").auth_on
    assert Settings(env="embedded", auth_enabled=True).auth_on
    with pytest.raises(ValidationError):
        Settings(env="production", webhook_secret="s3cret-for-tests", auth_enabled=False)


def test_logs_never_carry_keys() -> None:
    event = redact_secrets(
        None,
        "info",
        {
            "event": "request",
            "authorization": "Bearer ff_abcdefghijklmnop",
            "headers": {"X-Api-Key": "ff_qwertyuiopasdf", "accept": "json"},
            "detail": "client sent Bearer ff_zzzzzzzzzzzzzzzz and sk-123456789abcdef",
            "token": "Hello",  # a streamed LLM token, not a credential
        },
    )
    text = json.dumps(event)
    assert "ff_abcdefghijklmnop" not in text
    assert "ff_qwertyuiopasdf" not in text
    assert "ff_zzzzzzzzzzzzzzzz" not in text
    assert "sk-123456789abcdef" not in text
    assert event["headers"]["accept"] == "json"
    assert event["token"] == "Hello"


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["input", "session_id", "tweaks", "metadata", "webhook", "extra"]),
        st.one_of(
            st.none(),
            st.text(max_size=50),
            st.integers(),
            st.dictionaries(st.text(max_size=5), st.dictionaries(st.text(max_size=5), st.text())),
        ),
    )
)
def test_run_create_accepts_or_rejects_cleanly(body: dict[str, object]) -> None:
    """Any JSON object either validates into a RunCreate or raises ValidationError, nothing else."""
    try:
        run = RunCreate.model_validate(body)
    except ValidationError:
        return
    assert "extra" not in body
    if run.session_id is not None:
        import re

        assert re.match(SESSION_ID_PATTERN, run.session_id)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_input_over_the_limit_is_413_and_under_is_accepted(text: str) -> None:
    limits = Settings(max_input_chars=100)
    body = RunCreate(input=text)
    if len(text) > 100:
        with pytest.raises(PayloadTooLarge):
            check_run_limits(body, limits)
    else:
        check_run_limits(body, limits)


def test_tweaks_over_the_limit_are_413() -> None:
    limits = Settings(max_tweaks_bytes=100)
    with pytest.raises(PayloadTooLarge) as raised:
        check_run_limits(RunCreate(tweaks={"node": {"field": "x" * 200}}), limits)
    assert raised.value.extra["field"] == "tweaks"
