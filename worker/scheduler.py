"""The scheduler: one worker process at a time fires due schedules (docs/schedules.md).

Leadership is a Redis lock with a short TTL that the leader renews every tick; a leader
killed with -9 is replaced within ``scheduler_lock_s``. The lock only saves work: what
makes a due time fire once is the conditional claim in shared/schedules.py, so two
leaders for a moment (a paused process waking after its lock expired) still fire once.
"""

from __future__ import annotations

import asyncio

from shared.logging import error_text, get_logger
from shared.schedules import fire_due
from worker.context import WorkerContext

log = get_logger("worker.scheduler")


async def lead(ctx: WorkerContext) -> bool:
    """Take or keep the scheduler lock; whether this process holds it now."""
    key = ctx.settings.redis_key("scheduler-leader")
    ttl_ms = max(1000, int(ctx.settings.scheduler_lock_s * 1000))
    if await ctx.redis.set(key, ctx.worker_id, nx=True, px=ttl_ms):
        log.info("scheduler.leading", worker_id=ctx.worker_id)
        return True
    # Renew only if still ours: compare and extend in one step.
    renewed = await ctx.redis.eval(_RENEW, 1, key, ctx.worker_id, ttl_ms)  # type: ignore[misc]
    return bool(renewed)


_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


async def tick(ctx: WorkerContext) -> int:
    """One round: fire what is due if this process leads; how many runs it created."""
    if not await lead(ctx):
        return 0
    firings = await fire_due(ctx.sessions, ctx.redis, ctx.settings)
    return sum(1 for f in firings if f.run_id)


async def run_scheduler(ctx: WorkerContext) -> None:
    """Forever, every ``scheduler_tick_s``; an outage of the database or Redis waits it out."""
    while True:
        try:
            await tick(ctx)
        except Exception as exc:
            log.warning("scheduler.tick_failed", error=error_text(exc))
        await asyncio.sleep(ctx.settings.scheduler_tick_s)
