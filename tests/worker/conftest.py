"""A second service for the worker's fleet-wide features (two workers, a backend limited to
two calls at once, and the response cache on for the `prompt` flow), and a migrated database
on each backend for the tests that call the worker's functions directly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.llm_sim import start_llm_sim, stop_llm_sim
from tests.support.stack import (
    Proc,
    base_env,
    migrate,
    migrated_database,
    start_api,
    start_worker,
)

FLEET_LIMIT = 2
CACHE_TTL_S = 300


@dataclass
class Fleet:
    sim_url: str
    api: Proc
    workers: list[Proc]


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def either_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database's URL: a module using it runs on PostgreSQL, then on SQLite (the
    embedded default), with one database of each for the whole module."""
    with migrated_database(request.param, tmp_path_factory.mktemp(request.module.__name__)) as url:
        yield url


@pytest.fixture(scope="session")
def fleet(infra: dict[str, str]) -> Iterator[Fleet]:
    """llm-sim answering in 0.3 s, one API, two workers sharing the backend limit."""
    sim_url, sim = start_llm_sim(ttft_s=0.3)
    backends = [{"name": "sim", "base_url": f"{sim_url}/v1", "max_concurrency": FLEET_LIMIT}]
    env = base_env(
        infra["database_url"],
        infra["redis_url"],
        sim_url,
        FLOWFLEET_BACKENDS=json.dumps(backends),
        FLOWFLEET_CACHE_FLOWS=json.dumps({"prompt": CACHE_TTL_S}),
    )
    migrate(env)
    api = start_api(env)
    workers = [start_worker(env, "worker-a"), start_worker(env, "worker-b")]
    try:
        yield Fleet(sim_url, api, workers)
    finally:
        for proc in [api, *workers]:
            proc.stop()
        stop_llm_sim(sim)
