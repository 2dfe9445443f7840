"""Session fixtures: real PostgreSQL, Redis, llm-sim, an API process and a worker process."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.fixtures import LANGFLOW_FIXTURES
from tests.support.llm_sim import start_llm_sim, stop_llm_sim
from tests.support.stack import (
    IN_CI,
    Stack,
    base_env,
    fresh_postgres_database,
    migrate,
    postgres_available,
    redis_available,
    start_api,
    start_embedded_redis,
    start_worker,
)

if TYPE_CHECKING:
    from tests.support.mcp_server import MCPServer


def _describe(backend: str, redis_url: str) -> str:
    return f"flowfleet tests: database={backend}, redis={redis_url}"


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Database and Redis URLs for this session (PostgreSQL unless it is absent outside CI)."""
    with ExitStack() as stack:
        if postgres_available():
            database_url = stack.enter_context(fresh_postgres_database())
            backend = "postgresql"
        elif IN_CI:
            pytest.exit("CI=true but PostgreSQL at 127.0.0.1:5432 is unreachable", returncode=2)
        else:
            database_url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'flowfleet.db'}"
            backend = "sqlite"
        if redis_available():
            redis_url = "redis://127.0.0.1:6379/0"
        elif IN_CI:
            pytest.exit("CI=true but Redis at 127.0.0.1:6379 is unreachable", returncode=2)
        else:
            redis_url, proc = start_embedded_redis()
            stack.callback(proc.terminate)
        sys.stderr.write("\n" + _describe(backend, redis_url) + "\n")
        yield {"database_url": database_url, "redis_url": redis_url, "backend": backend}


@pytest.fixture(scope="session")
def llm_sim() -> Iterator[str]:
    """A real llm-sim over HTTP; tests change its behaviour through /_sim/config."""
    url, proc = start_llm_sim()
    yield url
    stop_llm_sim(proc)


@pytest.fixture(autouse=True)
def _reset_sim(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "llm_sim" in request.fixturenames:
        url = request.getfixturevalue("llm_sim")
        httpx.put(
            f"{url}/_sim/config",
            json={"ttft_s": 0, "token_s": 0, "tokens": 0, "error_rate": 0, "hang_rate": 0},
        )


@pytest.fixture(scope="session")
def stack(infra: dict[str, str], llm_sim: str) -> Iterator[Stack]:
    """The service as processes: migrations applied, one API, one worker."""
    env = base_env(infra["database_url"], infra["redis_url"], llm_sim)
    migrate(env)
    api = start_api(env)
    worker = start_worker(env)
    running = Stack(env=env, sim_url=llm_sim, api=api, workers=[worker], backend=infra["backend"])
    yield running
    for proc in [*running.workers, running.api]:
        proc.stop()


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client() as c:
        yield c


@pytest.fixture
def sim(llm_sim: str) -> Iterator[httpx.Client]:
    """Client for llm-sim's control endpoints (recorded requests, config)."""
    with httpx.Client(base_url=llm_sim, timeout=10) as c:
        c.delete("/_sim/requests")
        yield c


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[MCPServer]:
    """A real MCP server (tests/support/mcp_server.py) for the module's tests."""
    # Imported here: the MCP SDK takes seconds to import, and most sessions never need it.
    from tests.support.mcp_server import MCPServer

    server = MCPServer()
    yield server
    server.close()


def fixture_path(name: str) -> Path:
    return LANGFLOW_FIXTURES / f"{name}.json"


@pytest.fixture(scope="session", autouse=True)
async def _close_backend_clients() -> AsyncIterator[None]:
    """Flows run in this process open backend clients on the session's loop; close them."""
    yield
    from flows.models import close_http_clients

    await close_http_clients()
