"""Settings: DSN normalisation, backend resolution, routing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flows.routing import BackendNotAllowed, ModelSpec, route
from shared.settings import Settings
from tests.support.llm_sim import REPO_ROOT


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///var/x.db", "sqlite+aiosqlite:///var/x.db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_database_url_is_normalised_to_one_driver(given: str, expected: str) -> None:
    assert Settings(database_url=given).database_url == expected


def test_default_backend_is_llm_sim_unless_openai_key_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("FLOWFLEET_BACKENDS", raising=False)
    assert [b.name for b in Settings().backends] == ["llm-sim"]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    backend = Settings().backends[0]
    assert backend.name == "openai"
    assert backend.api_key_env == "OPENAI_API_KEY"
    assert backend.api_key() == "sk-test"  # read from the environment when a call needs it


def test_routing_by_base_url_then_model_then_default() -> None:
    settings = Settings(
        backends=[
            {"name": "vllm", "base_url": "http://vllm:8000/v1/", "models": ["Qwen/*"]},
            {"name": "openai", "base_url": "https://api.openai.com/v1", "models": ["gpt-*"]},
        ],
        default_backend="vllm",
    )
    assert route(ModelSpec(base_url="https://api.openai.com/v1/"), settings).name == "openai"
    assert route(ModelSpec(model_name="gpt-4o-mini"), settings).name == "openai"
    assert route(ModelSpec(model_name="Qwen/Qwen2.5-0.5B"), settings).name == "vllm"
    assert route(ModelSpec(model_name="mystery"), settings).name == "vllm"
    with pytest.raises(BackendNotAllowed):
        route(ModelSpec(base_url="http://elsewhere/v1"), settings)
    adhoc = settings.model_copy(update={"allow_adhoc_backends": True})
    assert route(ModelSpec(base_url="http://elsewhere/v1"), adhoc).base_url == "http://elsewhere/v1"


def test_api_process_never_imports_langchain() -> None:
    code = (
        "import sys; from api.app import create_app; create_app(); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'langchain', 'langchain_core', 'langchain_openai', 'openai', 'worker'}); print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
