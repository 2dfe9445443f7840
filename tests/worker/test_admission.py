"""The admission gate: a limit on runs in flight that follows the event loop's lag."""

from __future__ import annotations

import threading
import time

from worker.admission import AdmissionGate


def test_limit_shrinks_when_the_loop_lags_and_grows_when_it_keeps_up() -> None:
    gate = AdmissionGate(ceiling=1000, floor=8)
    gate.active = 200
    gate.limit = 200

    gate.adjust(lag_s=0.2)
    assert gate.limit == 180  # multiplicative decrease from what is in flight

    gate.active = 180
    gate.adjust(lag_s=0.0)
    assert gate.limit > 180  # additive increase while the loop answers on time

    gate.active = 0
    for _ in range(100):
        gate.adjust(lag_s=0.5)
    assert gate.limit == 8  # never below the floor


def test_a_full_gate_holds_threads_until_a_place_frees() -> None:
    gate = AdmissionGate(ceiling=1, floor=1)
    assert gate.enter(give_up=lambda: False)
    entered = threading.Event()

    def second() -> None:
        if gate.enter(give_up=lambda: False):
            entered.set()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.2)
    assert not entered.is_set()
    gate.leave()
    assert entered.wait(3)
    thread.join()


def test_waiting_threads_give_up_at_shutdown() -> None:
    gate = AdmissionGate(ceiling=1, floor=1)
    gate.enter(give_up=lambda: False)
    stopping = threading.Event()
    outcome: list[bool] = []
    thread = threading.Thread(target=lambda: outcome.append(gate.enter(give_up=stopping.is_set)))
    thread.start()
    stopping.set()
    gate.wake_all()
    thread.join(3)
    assert outcome == [False]


def test_waiting_runs_are_admitted_in_arrival_order() -> None:
    gate = AdmissionGate(ceiling=1, floor=1)
    assert gate.enter(give_up=lambda: False)
    order: list[int] = []
    threads = []
    for i in range(6):

        def wait_turn(i: int = i) -> None:
            assert gate.enter(give_up=lambda: False)
            order.append(i)
            gate.leave()

        thread = threading.Thread(target=wait_turn)
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 3
        while len(gate._line) < i + 1 and time.monotonic() < deadline:  # in line, in order
            time.sleep(0.005)
    gate.leave()
    for thread in threads:
        thread.join(3)
    assert order == list(range(6))
