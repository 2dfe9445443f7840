"""Admission control: hand runs to the event loop only while it keeps up.

A worker process's runs share one event loop. Past the CPU it can get, every run
admitted slows every other one down (more timers, more callbacks per token), and
throughput falls as the queue is drained into the loop. The gate keeps a limit on
runs in flight that follows the loop's lag: it grows while the loop answers on
time and shrinks when it falls behind, so a worker waiting on slow LLMs still
holds hundreds of runs while a CPU-bound one holds only what it can finish at
full speed; the rest wait in their Celery threads, costing nothing.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable

from shared.metrics import ADMISSION_LIMIT


class _Ticket:
    """One waiting thread's place in line."""

    __slots__ = ("admitted", "event")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.admitted = False


class AdmissionGate:
    """A limit on runs in flight, adjusted from the event loop's lag (additive increase,
    multiplicative decrease). Waiting runs are admitted strictly in arrival order: under
    overload the queue's order holds, so the slowest answers are not left to chance (a
    condition variable wakes threads in no fair order: a p99 many times the median)."""

    def __init__(
        self,
        ceiling: int,
        *,
        floor: int = 8,
        # Bounds on how late a 100 ms tick may wake. A CPU-bound loop works in batches
        # (many runs' events per iteration), and larger batches cost less per run: tight
        # bounds keep the batches small and lose throughput (the figures for these values:
        # docs/architecture.md, "Measurements").
        lag_high_s: float = 0.05,
        lag_low_s: float = 0.02,
        tick_s: float = 0.1,
    ) -> None:
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.limit = min(max(64, self.floor), ceiling)
        self.active = 0
        self.lag_high_s = lag_high_s
        self.lag_low_s = lag_low_s
        self.tick_s = tick_s
        self._lock = threading.Lock()
        self._line: deque[_Ticket] = deque()

    def enter(self, give_up: Callable[[], bool]) -> bool:
        """Block the calling thread until its turn comes; False if ``give_up`` says so."""
        with self._lock:
            if not self._line and self.active < self.limit:
                self.active += 1
                return True
            ticket = _Ticket()
            self._line.append(ticket)
        while True:
            # Set by the admission (or by wake_all); the timeout is only a backstop.
            ticket.event.wait(2.0)
            with self._lock:
                if ticket.admitted:
                    return True
                if give_up():
                    self._line.remove(ticket)
                    return False
                ticket.event.clear()

    def leave(self) -> None:
        with self._lock:
            self.active -= 1
            self._admit()

    def _admit(self) -> None:
        # With the lock held: hand free places to the head of the line.
        while self._line and self.active < self.limit:
            ticket = self._line.popleft()
            ticket.admitted = True
            self.active += 1
            ticket.event.set()

    def wake_all(self) -> None:
        """Let every waiting thread re-check ``give_up`` (e.g. at shutdown)."""
        with self._lock:
            for ticket in self._line:
                ticket.event.set()

    def adjust(self, lag_s: float) -> None:
        """One step of the control loop, from the lag just measured."""
        with self._lock:
            if lag_s > self.lag_high_s:
                self.limit = max(self.floor, min(self.limit, int(self.active * 0.9)))
            elif lag_s < self.lag_low_s and self.active >= self.limit * 0.9:
                self.limit = min(self.ceiling, self.limit + max(4, self.limit // 8))
                self._admit()

    async def watch(self) -> None:
        """Forever: measure how late a short sleep wakes up, and adjust."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.tick_s)
            self.adjust(max(0.0, loop.time() - started - self.tick_s))
            ADMISSION_LIMIT.set(self.limit)
