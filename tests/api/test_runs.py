"""Submit, execute on a real worker, poll: the spine of the service, through real HTTP."""

from __future__ import annotations

import httpx

from flowfleet.llm_sim import reply_text
from tests.support.stack import wait_for_run

PROMPT_SYSTEM = "You are a concise assistant. Answer in one paragraph."
CHAT_SYSTEM = "You are a helpful assistant. Use the conversation so far."


def test_submit_answers_202_with_location_then_poll_shows_backend_output(
    client: httpx.Client, sim: httpx.Client
) -> None:
    response = client.post("/v1/flows/prompt/runs", json={"input": "What is a queue?"})

    assert response.status_code == 202
    run = response.json()
    assert response.headers["location"] == f"/v1/runs/{run['id']}"
    assert run["status"] in {"queued", "running", "succeeded"}
    assert run["flow_version"]

    done = wait_for_run(client, run["id"])
    assert done["status"] == "succeeded", done
    messages = [
        {"role": "system", "content": PROMPT_SYSTEM},
        {"role": "user", "content": "What is a queue?"},
    ]
    assert done["output"]["text"] == reply_text(messages)
    assert done["attempts"] == 1
    assert done["usage"]["total_tokens"] > 0
    assert done["started_at"]
    assert done["finished_at"]
    sent = sim.get("/_sim/requests").json()
    assert [m["content"] for m in sent[-1]["messages"]] == [PROMPT_SYSTEM, "What is a queue?"]


def test_second_turn_receives_first_exchange_and_history_lists_both_turns(
    client: httpx.Client,
) -> None:
    first = client.post(
        "/v1/flows/chat/runs", json={"input": "Hi, I am Ada", "session_id": "s-ada"}
    )
    first_run = wait_for_run(client, first.json()["id"])
    assert first_run["status"] == "succeeded"

    second = client.post("/v1/flows/chat/runs", json={"input": "Who am I?", "session_id": "s-ada"})
    second_run = wait_for_run(client, second.json()["id"])

    expected = [
        {"role": "system", "content": CHAT_SYSTEM},
        {"role": "user", "content": "Hi, I am Ada"},
        {"role": "assistant", "content": first_run["output"]["text"]},
        {"role": "user", "content": "Who am I?"},
    ]
    assert second_run["output"]["text"] == reply_text(expected)
    history = client.get("/v1/sessions/s-ada/messages").json()["messages"]
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "Hi, I am Ada"),
        ("assistant", first_run["output"]["text"]),
        ("user", "Who am I?"),
        ("assistant", second_run["output"]["text"]),
    ]


def test_history_pages_oldest_first_with_next_after(client: httpx.Client) -> None:
    for text in ("one", "two"):
        run = client.post("/v1/flows/chat/runs", json={"input": text, "session_id": "s-page"})
        wait_for_run(client, run.json()["id"])
    whole = client.get("/v1/sessions/s-page/messages").json()
    assert len(whole["messages"]) == 4
    assert whole["next_after"] is None

    pages, after = [], None
    while True:
        params = {"limit": 3} if after is None else {"limit": 3, "after": after}
        page = client.get("/v1/sessions/s-page/messages", params=params).json()
        pages.append([m["id"] for m in page["messages"]])
        after = page["next_after"]
        if after is None:
            break
    assert pages == [[m["id"] for m in whole["messages"][:3]], [whole["messages"][3]["id"]]]
    assert client.get("/v1/sessions/s-page/messages", params={"limit": 0}).status_code == 422


def test_sessions_never_see_each_other(client: httpx.Client) -> None:
    wait_for_run(
        client,
        client.post("/v1/flows/chat/runs", json={"input": "secret A", "session_id": "s-a"}).json()[
            "id"
        ],
    )
    run_b = wait_for_run(
        client,
        client.post("/v1/flows/chat/runs", json={"input": "hello", "session_id": "s-b"}).json()[
            "id"
        ],
    )

    only_b = [{"role": "system", "content": CHAT_SYSTEM}, {"role": "user", "content": "hello"}]
    assert run_b["output"]["text"] == reply_text(only_b)
    assert [m["content"] for m in client.get("/v1/sessions/s-b/messages").json()["messages"]] == [
        "hello",
        run_b["output"]["text"],
    ]


def test_failed_run_records_backend_error_and_adds_nothing_to_session(
    client: httpx.Client, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"error_rate": 1.0, "error_status": [500]})
    run = client.post("/v1/flows/chat/runs", json={"input": "boom", "session_id": "s-fail"}).json()
    done = wait_for_run(client, run["id"])

    assert done["status"] == "failed"
    assert done["error"]["code"] == "backend_error"
    assert "500" in done["error"]["message"]
    assert done["output"] is None
    assert client.get("/v1/sessions/s-fail/messages").json()["messages"] == []


def test_delete_session_forgets_history(client: httpx.Client) -> None:
    run = client.post("/v1/flows/chat/runs", json={"input": "remember me", "session_id": "s-del"})
    wait_for_run(client, run.json()["id"])
    assert len(client.get("/v1/sessions/s-del/messages").json()["messages"]) == 2

    assert client.delete("/v1/sessions/s-del").status_code == 204
    assert client.get("/v1/sessions/s-del/messages").json()["messages"] == []


def test_list_runs_filters_and_paginates(client: httpx.Client) -> None:
    ids = [
        client.post(
            "/v1/flows/prompt/runs", json={"input": f"n{i}", "session_id": "s-list"}
        ).json()["id"]
        for i in range(5)
    ]
    for run_id in ids:
        wait_for_run(client, run_id)

    page1 = client.get("/v1/runs", params={"session_id": "s-list", "limit": 3}).json()
    page2 = client.get(
        "/v1/runs", params={"session_id": "s-list", "limit": 3, "cursor": page1["next_cursor"]}
    ).json()
    seen = [r["id"] for r in page1["items"] + page2["items"]]
    assert sorted(seen) == sorted(ids)
    assert len(set(seen)) == 5
    assert page2["next_cursor"] is None
    by_status = client.get("/v1/runs", params={"session_id": "s-list", "status": "failed"}).json()
    assert by_status["items"] == []
    by_flow = client.get("/v1/runs", params={"flow_id": "chat", "session_id": "s-list"}).json()
    assert by_flow["items"] == []


def test_flows_are_listed_and_described(client: httpx.Client) -> None:
    listed = {f["id"]: f for f in client.get("/v1/flows").json()["items"]}
    assert {"prompt", "chat"} <= set(listed)

    chat = client.get("/v1/flows/chat").json()
    assert chat["name"] == "Chat with memory"
    assert chat["kind"] == "python"
    assert chat["uses_history"] is True
    assert chat["backends"] == ["sim"]
    assert chat["version"] == listed["chat"]["version"]


def test_retry_resubmits_a_finished_run_as_a_new_run(client: httpx.Client) -> None:
    original = client.post(
        "/v1/flows/prompt/runs", json={"input": "again please", "metadata": {"tag": "t1"}}
    ).json()
    wait_for_run(client, original["id"])

    retried = client.post(f"/v1/runs/{original['id']}/retry")

    assert retried.status_code == 202
    again = wait_for_run(client, retried.json()["id"])
    assert again["id"] != original["id"]
    assert again["status"] == "succeeded"
    assert again["input"] == "again please"
    assert again["metadata"] == {"tag": "t1", "retry_of": original["id"]}
