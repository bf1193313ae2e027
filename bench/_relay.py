"""A bare FastAPI relay: the reference point DESIGN §7 budgets Cerver against.

It forwards ``POST /v1/messages`` to the upstream with one pooled httpx client and streams the
answer back, and does nothing else (no auth, no storage).

    python -m bench._relay UPSTREAM_URL PORT
"""

from __future__ import annotations

import sys

import httpx
import uvicorn
from fastapi import FastAPI, Request
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse


def create_relay(upstream: str) -> FastAPI:
    app = FastAPI()
    # A pool as large as the benchmarks' concurrency (httpx's default holds 100 connections).
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    client = httpx.AsyncClient(base_url=upstream, timeout=30, limits=limits)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/messages")
    async def relay(request: Request) -> StreamingResponse:
        headers = {k: v for k, v in request.headers.items() if k in ("content-type", "x-api-key")}
        upstream_request = client.build_request(
            "POST", "/v1/messages", content=await request.body(), headers=headers
        )
        response = await client.send(upstream_request, stream=True)
        return StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            media_type=response.headers.get("content-type"),
            background=BackgroundTask(response.aclose),
        )

    return app


if __name__ == "__main__":
    uvicorn.run(
        create_relay(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning"
    )
