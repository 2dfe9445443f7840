"""Baseline *direct*: one FastAPI process awaiting the chain in the request; no queue, no database.

Run: ``BENCH_FLOW_FILE=flow.json uvicorn benchmarks.direct_app:app``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from benchmarks.baseline_flow import flow_input, load_flow

app = FastAPI()
flow = load_flow()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@app.post("/run")
async def run(body: dict[str, Any]) -> dict[str, Any]:
    """Run the flow in the request and answer its output."""
    result = await flow.ainvoke(flow_input(str(body["input"])), {})
    return {"status": "succeeded", "output": result.as_json()}
