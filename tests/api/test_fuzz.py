"""Schemathesis against the running API's OpenAPI schema: no 500s, answers match the schema."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support.stack import Stack

EXAMPLES_PER_OPERATION = 12
OPENAI_PATHS = {"/v1/chat/completions", "/v1/models", "/api/v1/responses"}


def test_api_never_errors_and_matches_its_schema(stack: Stack) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.api.url}/openapi.json")
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy(), data=st.data())
        def check(case: schemathesis.Case, data: st.DataObject) -> None:
            nonlocal tried
            tried += 1
            response = case.call(base_url=stack.api.url, timeout=10)
            if response.status_code >= 500 and response.status_code != 503:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
                return
            if response.status_code >= 400 and case.path in OPENAI_PATHS:
                # The OpenAI-compatible door answers OpenAI's error shape, on purpose.
                if "error" not in response.json():
                    failures.append(f"{case.method} {case.formatted_path}: no OpenAI error")
                return
            if response.status_code >= 400:
                # Every error is problem+json with a stable code (not every one is in the schema).
                if response.headers.get("content-type", [""])[0] != "application/problem+json":
                    failures.append(f"{case.method} {case.formatted_path}: not problem+json")
                elif "Traceback" in response.text or "code" not in response.json():
                    failures.append(f"{case.method} {case.formatted_path}: bad problem body")
                return
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except Exception as exc:
                failures.append(f"{case.method} {case.formatted_path}: {str(exc)[:300]}")

        check()
    print(f"\n[fuzz] operations={len(list(schema.get_all_operations()))} cases={tried}")  # noqa: T201
    assert failures == []
