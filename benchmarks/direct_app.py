"""Baseline *direct*: one FastAPI process awaiting the chain in the request; no queue, no database.

Run: ``BENCH_FLOW_FILE=flow.json uvicorn benchmarks.direct_app:app``. With
``BENCH_DIRECT_CHAIN=stock`` it awaits the tutorial chain instead of the compiled flow
(*direct-stock*: ChatOpenAI with the SDK's default HTTP client).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

from benchmarks.baseline_flow import flow_input, load_flow, stock_chain

app = FastAPI()
STOCK = os.environ.get("BENCH_DIRECT_CHAIN") == "stock"
flow = None if STOCK else load_flow()
chain = stock_chain() if STOCK else None


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@app.post("/run")
async def run(body: dict[str, Any]) -> dict[str, Any]:
    """Run the flow in the request and answer its output."""
    if chain is not None:
        return {
            "status": "succeeded",
            "output": {"text": await chain.ainvoke({"input": body["input"]})},
        }
    assert flow is not None
    result = await flow.ainvoke(flow_input(str(body["input"])), {})
    return {"status": "succeeded", "output": result.as_json()}
