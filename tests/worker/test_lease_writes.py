"""Claims and lease renewals commit without waiting for the disk; results still wait for it."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from sqlalchemy import text

from shared.settings import Settings
from tests.support.stack import Stack
from worker.context import build_context
from worker.execute import claim_run
from worker.maintenance import renew_leases


async def test_only_the_lease_pool_commits_without_waiting_for_the_disk(stack: Stack) -> None:
    settings = Settings(database_url=stack.env["FLOWFLEET_DATABASE_URL"])
    ctx = build_context(settings, celery=None)  # type: ignore[arg-type]
    try:
        seen = {}
        for name in ("leases", "statements", "engine"):
            async with getattr(ctx, name).connect() as conn:
                seen[name] = (await conn.execute(text("SHOW synchronous_commit"))).scalar()
        # A result (statements, engine) is acknowledged only once it is on disk.
        assert seen == {"leases": "off", "statements": "on", "engine": "on"}
    finally:
        await ctx.close_pools()
        await ctx.redis.aclose()


async def test_claims_and_renewals_go_through_the_lease_pool(stack: Stack) -> None:
    settings = Settings(database_url=stack.env["FLOWFLEET_DATABASE_URL"])
    full = build_context(settings, celery=None)  # type: ignore[arg-type]
    # Only the lease pool is there: a claim or renewal through another one fails.
    ctx = SimpleNamespace(
        leases=full.leases, settings=settings, worker_id="w-test", in_flight={"a-run"}
    )
    try:
        assert await claim_run(ctx, str(uuid.uuid4())) is None  # type: ignore[arg-type]
        assert await renew_leases(ctx) == 0  # type: ignore[arg-type]
    finally:
        await full.close_pools()
        await full.redis.aclose()
