"""How a started turn is answered: server-sent events as it runs, or its JSON result.

Shared by ``run-llm`` and ``tool-results``, the two routes that start a turn of the native API.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from cerver.api.schemas.turns import TurnPublic
from cerver.api.sse import encode_event, sse_response
from cerver.gateway import Gateway
from cerver.services.turns import TurnHandle

__all__ = ["answer_turn"]


async def answer_turn(
    gateway: Gateway, handle: TurnHandle, *, stream: bool, started: float
) -> TurnPublic | StreamingResponse:
    """Stream ``handle``'s events (with the ``X-Cerver-*`` headers) or await its result.

    A failed turn raises its failure (same code, message and ``retryable`` as its SSE
    ``error`` event), so the error handler answers with that failure's status and body.
    """
    session_id = handle.session.id
    if stream:
        provider = gateway.harnesses.harness_class(handle.harness).provider
        headers = {
            "X-Cerver-Session-Id": session_id,
            "X-Cerver-Run-Id": handle.run_id,
            "X-Cerver-Provider": provider,
            "X-Cerver-Harness": handle.harness,
            "X-Cerver-Model": handle.model,
            "X-Cerver-Stream-Latency-Ms": f"{(time.perf_counter() - started) * 1000:.2f}",
        }
        return sse_response(_sse(handle), headers)
    result = await handle.result()
    if result.status == "failed" and result.error is not None:
        result.error.with_context(session_id=session_id, run_id=handle.run_id).raise_()
    return TurnPublic(
        session_id=session_id,
        run_id=result.run_id,
        status=result.status,
        message=result.message,
        usage=result.usage,
        cost_estimate_usd=result.usage.cost_usd,
        latency_ms=round(result.latency_ms, 2),
        harness=result.harness,
        model=result.model,
        answered_model=result.answered_model,
        pending_tool_calls=result.pending_tool_calls,
    )


async def _sse(handle: TurnHandle) -> AsyncIterator[bytes]:
    async for batch in handle.event_batches():
        yield b"".join(map(encode_event, batch))
