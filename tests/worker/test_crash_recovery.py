"""A worker killed with SIGKILL mid-run: the run is taken over and recorded exactly once."""

from __future__ import annotations

import httpx

from tests.support.faults import finishes, isolated_stack
from tests.support.stack import start_worker, wait_for_run


def test_kill_9_mid_run_then_new_worker_finishes_it_exactly_once(
    infra: dict[str, str], llm_sim: str, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"ttft_s": 5.0, "token_s": 0, "tokens": 5})
    with isolated_stack(llm_sim, infra["redis_url"]) as stack, stack.client() as client:
        run = client.post(
            "/v1/flows/chat/runs", json={"input": "survive this", "session_id": "s-crash"}
        ).json()
        wait_for_run(client, run["id"], timeout=20, until={"running"})
        first = stack.workers[0]
        first.kill()  # SIGKILL: no cleanup, the message stays unacked, the lease stays held

        second = start_worker(stack.env, "worker-b")
        stack.workers.append(second)
        done = wait_for_run(client, run["id"], timeout=60)

        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        messages = client.get("/v1/sessions/s-crash/messages").json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[1]["content"] == done["output"]["text"]
        assert finishes([first, second])[run["id"]] == 1
