"""Model turns: ``POST /v2/sessions/{id}/run-llm``, as JSON or as server-sent events."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header

from cerver.api.contract import TURN, errors
from cerver.api.deps import AccountDep, GatewayDep
from cerver.api.schemas.sessions import harness_choice
from cerver.api.schemas.turns import TurnCreate, TurnPublic
from cerver.api.sse import encode_event, sse_response, wants_stream
from cerver.services.turns import TurnHandle, TurnRequest

router = APIRouter(prefix="/v2/sessions", tags=["turns"])


@router.post(
    "/{session_id}/run-llm",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON or SSE"},
        **errors(*TURN),
    },
)
async def run_llm(
    session_id: str,
    body: TurnCreate,
    gateway: GatewayDep,
    account: AccountDep,
    accept: Annotated[str | None, Header()] = None,
) -> TurnPublic:
    """Run one model turn.

    With ``tools``, a call of one of the app's tools stops the turn with status
    ``requires_action`` and the ``pending_tool_calls``; ``POST …/tool-results`` continues it.

    SSE events: ``turn.started``, ``text_delta``, ``tool_call``, ``tool_result``, ``message``,
    ``usage``, ``turn.completed`` (the final message) and ``error``. Streaming responses carry
    ``X-Cerver-Session-Id``, ``X-Cerver-Provider`` (the model provider), ``X-Cerver-Harness``,
    ``X-Cerver-Model`` and ``X-Cerver-Stream-Latency-Ms``. A failed turn answers with its
    failure's error body and status (502 for an upstream or harness failure, 504 for a time
    limit, …; see ``cerver/errors.py``), the same code, message and ``retryable`` as its SSE
    ``error`` event; the failure is also recorded in the transcript.
    """
    started = time.perf_counter()
    choice = None
    if body.harness is not None or body.model is not None:
        choice = harness_choice(body.harness, body.model)
    request = TurnRequest(
        input=body.input,
        harness=choice,
        system_prompt=body.system_prompt,
        max_steps=body.max_steps,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        wait=body.multitask == "enqueue",
        client_tools=tuple(tool.spec() for tool in body.tools),
    )
    handle = await gateway.turns.start(account.id, session_id, request)
    if wants_stream(accept, body.stream):
        provider = gateway.harnesses.harness_class(handle.harness).provider
        headers = {
            "X-Cerver-Session-Id": session_id,
            "X-Cerver-Run-Id": handle.run_id,
            "X-Cerver-Provider": provider,
            "X-Cerver-Harness": handle.harness,
            "X-Cerver-Model": handle.model,
            "X-Cerver-Stream-Latency-Ms": f"{(time.perf_counter() - started) * 1000:.2f}",
        }
        return sse_response(_sse(handle), headers)  # type: ignore[return-value]
    result = await handle.result()
    if result.status == "failed" and result.error is not None:
        # The failure as the harness reported it: same code, message and retryability.
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
    async for event in handle.events():
        yield encode_event(event)
