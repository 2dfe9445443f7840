"""Files over HTTP: upload, read, list, delete, owner-scoped; hostile uploads refused with a
code; LangFlow's Document Q&A starter (File -> Prompt -> model) run unmodified with an
uploaded document, the document's text reaching llm-sim's recorded prompt.

Real API and worker processes on their own database, auth on, with two tenant keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.db import create_engine, session_factory
from shared.errors import FileUnavailable
from shared.settings import Settings
from tests.support.documents import docx, minimal_pdf, zip_bomb_docx
from tests.support.faults import isolated_stack
from tests.support.fixtures import LANGFLOW_FIXTURES
from tests.support.keys import Key, as_key, new_key
from tests.support.stack import Stack, wait_for_run
from worker.files import RunFiles

TENANT = "flows:write,runs:write,runs:read"
MAX_FILE_BYTES = 64 * 1024
MAX_FILES = 8
MAX_UNPACKED = 8 * 1024 * 1024
MAX_OWNER_BYTES = 4 * MAX_FILE_BYTES
DOC_QA = LANGFLOW_FIXTURES / "starters-1.8.4" / "Document Q&A.json"
FILE_NODE = "File-b2gOG"  # the starter's File node


@pytest.fixture(scope="module")
def secure(infra: dict[str, str], llm_sim: str) -> Iterator[Stack]:
    with isolated_stack(
        llm_sim,
        infra["redis_url"],
        FLOWFLEET_AUTH_ENABLED="true",
        FLOWFLEET_MAX_FILE_BYTES=str(MAX_FILE_BYTES),
        FLOWFLEET_MAX_FILES_PER_OWNER=str(MAX_FILES),
        FLOWFLEET_MAX_FILE_UNPACKED_BYTES=str(MAX_UNPACKED),
        FLOWFLEET_MAX_OWNER_FILE_BYTES=str(MAX_OWNER_BYTES),
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def keys(secure: Stack) -> dict[str, Key]:
    return {
        "a": new_key(secure, TENANT, "tenant-a"),
        "b": new_key(secure, TENANT, "tenant-b"),
        "quota": new_key(secure, TENANT, "tenant-quota"),
        "bytes": new_key(secure, TENANT, "tenant-bytes"),
        "reader": new_key(secure, "runs:read", "reader"),
    }


@pytest.fixture
def a(secure: Stack, keys: dict[str, Key]) -> Iterator[httpx.Client]:
    with as_key(secure, keys["a"].key) as client:
        yield client


@pytest.fixture
def b(secure: Stack, keys: dict[str, Key]) -> Iterator[httpx.Client]:
    with as_key(secure, keys["b"].key) as client:
        yield client


def _upload(client: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return client.post("/v1/files", files={"file": (name, data)})


def _uploaded(client: httpx.Client, name: str, data: bytes) -> dict[str, Any]:
    response = _upload(client, name, data)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def _doc_qa(client: httpx.Client, flow_id: str) -> None:
    put = client.put(
        f"/v1/flows/{flow_id}",
        content=DOC_QA.read_bytes(),
        headers={"content-type": "application/json"},
    )
    assert put.status_code in (200, 201), put.text


def _run(client: httpx.Client, flow_id: str, file_ids: list[str]) -> dict[str, Any]:
    submitted = client.post(
        f"/v1/flows/{flow_id}/runs",
        json={"input": "What does the document say?", "tweaks": {FILE_NODE: {"path": file_ids}}},
    )
    assert submitted.status_code == 202, submitted.text
    return wait_for_run(client, submitted.json()["id"])


def test_upload_read_list_and_delete(a: httpx.Client) -> None:
    data = b"Queues decouple producers from consumers.\n"
    created = _upload(a, "notes.md", data)
    assert created.status_code == 201, created.text
    meta = created.json()
    assert created.headers["location"] == f"/v1/files/{meta['id']}"
    assert meta["name"] == "notes.md"
    assert meta["size"] == len(data)
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["content_type"] == "text/markdown"

    assert a.get(f"/v1/files/{meta['id']}").json() == meta
    for url in (f"/v1/files/{meta['id']}?content=true", f"/v1/files/{meta['id']}/content"):
        content = a.get(url)
        assert content.status_code == 200
        assert content.content == data
        assert content.headers["content-disposition"].startswith("attachment;")
        assert content.headers["x-content-type-options"] == "nosniff"
    assert meta["id"] in {f["id"] for f in a.get("/v1/files").json()["items"]}

    assert a.delete(f"/v1/files/{meta['id']}").status_code == 204
    _problem(a.get(f"/v1/files/{meta['id']}"), 404, "file_not_found")
    _problem(a.delete(f"/v1/files/{meta['id']}"), 404, "file_not_found")


def test_a_file_name_keeps_no_folders(a: httpx.Client) -> None:
    meta = _uploaded(a, "../../etc/passwd.txt", b"x")
    assert meta["name"] == "passwd.txt"


def test_another_key_cannot_see_delete_or_run_a_file(
    secure: Stack, a: httpx.Client, b: httpx.Client, keys: dict[str, Key]
) -> None:
    mine = _uploaded(a, "secret.txt", b"tenant A's secret plan")
    url = f"/v1/files/{mine['id']}"
    for response in (b.get(url), b.get(f"{url}?content=true"), b.get(f"{url}/content")):
        _problem(response, 404, "file_not_found")
    _problem(b.delete(url), 404, "file_not_found")
    assert mine["id"] not in {f["id"] for f in b.get("/v1/files").json()["items"]}
    assert a.get(url).status_code == 200  # still there, untouched

    # B's own copy of the flow, naming A's file: refused at submit exactly as a missing file.
    _doc_qa(b, "doc-qa-b")
    submitted = b.post(
        "/v1/flows/doc-qa-b/runs",
        json={"input": "leak it", "tweaks": {FILE_NODE: {"path": [mine["id"]]}}},
    )
    body = _problem(submitted, 404, "file_not_found")
    assert body["file_id"] == mine["id"]

    # And the worker's own check: a run of B never reads A's file, whatever reaches it.
    async def read_as_b() -> None:
        engine = create_engine(Settings(database_url=secure.env["FLOWFLEET_DATABASE_URL"]))
        try:
            with pytest.raises(FileUnavailable):
                await RunFiles(session_factory(engine), keys["b"].id).content(mine["id"])
            info = await RunFiles(session_factory(engine), keys["a"].id).info(mine["id"])
            assert info.name == "secret.txt"
        finally:
            await engine.dispose()

    asyncio.run(read_as_b())


def test_a_reader_key_cannot_upload_or_delete(secure: Stack, keys: dict[str, Key]) -> None:
    with as_key(secure, keys["reader"].key) as reader:
        _problem(_upload(reader, "x.txt", b"x"), 403, "insufficient_scope")
        _problem(reader.delete("/v1/files/whatever"), 403, "insufficient_scope")
        assert reader.get("/v1/files").status_code == 200


def test_an_empty_file_is_422(a: httpx.Client) -> None:
    _problem(_upload(a, "empty.txt", b""), 422, "empty_file")


def test_a_file_over_the_limit_is_413(a: httpx.Client) -> None:
    # Just over: the route measures the file; far over: the body limit stops it unread.
    for size in (MAX_FILE_BYTES + 1, 4 * MAX_FILE_BYTES):
        body = _problem(_upload(a, "big.txt", b"x" * size), 413, "file_too_large")
        assert str(MAX_FILE_BYTES) in body["detail"]
    assert _upload(a, "fits.txt", b"x" * MAX_FILE_BYTES).status_code == 201


def test_an_unsupported_type_is_415(a: httpx.Client) -> None:
    body = _problem(_upload(a, "tool.exe", b"MZ\x90\x00"), 415, "unsupported_file_type")
    assert ".pdf" in body["detail"]


def test_a_zip_bomb_docx_is_413(a: httpx.Client) -> None:
    bomb = zip_bomb_docx(2 * MAX_UNPACKED)  # 16 MiB of zeros inside, ~50 KB on the wire
    assert len(bomb) < MAX_FILE_BYTES
    body = _problem(_upload(a, "bomb.docx", bomb), 413, "file_too_large")
    assert "unpacks to" in body["detail"]


def test_a_pdf_that_is_not_a_pdf(a: httpx.Client, sim: httpx.Client) -> None:
    # No PDF header: refused at upload.
    _problem(_upload(a, "fake.pdf", b"just text, no PDF"), 415, "unsupported_file_type")
    # A header and nothing a reader can use: stored, and the run fails naming the file.
    broken = _uploaded(a, "broken.pdf", minimal_pdf(["x"])[:60])
    _doc_qa(a, "doc-qa-a")
    done = _run(a, "doc-qa-a", [broken["id"]])
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "file_parse_failed"
    assert "broken.pdf" in done["error"]["message"]
    assert broken["id"] in done["error"]["message"]
    assert sim.get("/_sim/requests").json() == []  # the model was never called


def test_a_file_node_without_a_file_is_422_saying_how(a: httpx.Client) -> None:
    _doc_qa(a, "doc-qa-a")
    submitted = a.post("/v1/flows/doc-qa-a/runs", json={"input": "hi"})
    body = _problem(submitted, 422, "file_required")
    assert body["node_id"] == FILE_NODE
    assert json.dumps({FILE_NODE: {"path": ["<file id>"]}}) in body["detail"]
    assert "POST /v1/files" in body["detail"]


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("guide.txt", lambda: b"The zebra code is 7731.", "The zebra code is 7731."),
        ("guide.pdf", lambda: minimal_pdf(["PDF zebra 4410"]), "PDF zebra 4410"),
        ("guide.docx", lambda: docx(["DOCX zebra 9052"]), "DOCX zebra 9052"),
    ],
)
def test_document_qa_starter_reads_the_uploaded_document(
    a: httpx.Client, sim: httpx.Client, name: str, make: Any, expected: str
) -> None:
    doc = _uploaded(a, name, make())
    _doc_qa(a, "doc-qa-a")
    done = _run(a, "doc-qa-a", [doc["id"]])
    assert done["status"] == "succeeded", done
    (request,) = sim.get("/_sim/requests").json()
    system = request["messages"][0]
    assert system["role"] == "system"
    assert expected in system["content"]  # the File node's text, through the Prompt
    assert request["messages"][-1] == {"role": "user", "content": "What does the document say?"}


def test_a_deleted_file_fails_the_next_run_at_submit(a: httpx.Client) -> None:
    doc = _uploaded(a, "gone.txt", b"soon gone")
    _doc_qa(a, "doc-qa-a")
    assert a.delete(f"/v1/files/{doc['id']}").status_code == 204
    submitted = a.post(
        "/v1/flows/doc-qa-a/runs",
        json={"input": "hi", "tweaks": {FILE_NODE: {"path": doc["id"]}}},
    )
    _problem(submitted, 404, "file_not_found")


def test_files_per_owner_limit_and_pages(secure: Stack, keys: dict[str, Key]) -> None:
    with as_key(secure, keys["quota"].key) as quota:
        ids = [_uploaded(quota, f"f{i}.txt", f"file {i}".encode())["id"] for i in range(MAX_FILES)]
        body = _problem(_upload(quota, "one-more.txt", b"x"), 409, "file_quota_exceeded")
        assert "DELETE /v1/files" in body["detail"]

        first = quota.get("/v1/files", params={"limit": 5}).json()
        second = quota.get("/v1/files", params={"limit": 5, "cursor": first["next_cursor"]}).json()
        assert second["next_cursor"] is None
        listed = [f["id"] for f in first["items"] + second["items"]]
        assert sorted(listed) == sorted(ids)  # every file once, across the pages

        quota.delete(f"/v1/files/{ids[0]}")
        assert _upload(quota, "one-more.txt", b"x").status_code == 201


def test_bytes_per_owner_limit(secure: Stack, keys: dict[str, Key]) -> None:
    with as_key(secure, keys["bytes"].key) as owner:
        for i in range(4):
            _uploaded(owner, f"chunk{i}.txt", b"x" * MAX_FILE_BYTES)
        body = _problem(_upload(owner, "more.txt", b"x"), 409, "file_quota_exceeded")
        assert "FLOWFLEET_MAX_OWNER_FILE_BYTES" in body["detail"]
