"""The model endpoints: one request handler shared by the three dialects.

Each request goes through the same steps:

1. Read the body and log the request (before any delay, so a test sees requests that time
   out too).
2. Parse it with the endpoint's dialect; a request the provider would reject gets a 400 in
   the provider's error shape.
3. Take the oldest scripted reply for the request's model, else the default reply.
4. Answer: the scripted HTTP error, or the reply rendered as JSON or SSE, paced as scripted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cerver.mock_upstream import anthropic
from cerver.mock_upstream.default import default_reply
from cerver.mock_upstream.dialect import BadRequest, Dialect
from cerver.mock_upstream.neutral import build_output, new_id, split_in_two
from cerver.mock_upstream.pacing import PacedResponse
from cerver.mock_upstream.script import Reply, UpstreamFailure
from cerver.mock_upstream.state import MockState

__all__ = ["count_tokens_endpoint", "endpoint"]

Endpoint = Callable[[Request], Awaitable[Response]]
_SSE = "text/event-stream; charset=utf-8"
_STREAM_FAILURE = "[mock upstream] scripted stream failure"


def endpoint(dialect: Dialect, state: MockState) -> Endpoint:
    """The handler of ``dialect``'s completion route, reading and writing ``state``."""

    async def complete(request: Request) -> Response:
        body = await _read(request, dialect, state)
        headers = {dialect.request_id_header: new_id("req_mock_")}
        if not isinstance(body, dict):
            failure = BadRequest("The request body is not a valid JSON object.").failure
            return _error(dialect, failure, headers)
        try:
            conversation = dialect.parse(body, state)
        except BadRequest as exc:
            return _error(dialect, exc.failure, headers)
        reply = state.take(conversation.model) or default_reply(conversation)
        if reply.error is not None:
            return _error(dialect, reply.error, headers, reply)
        output = build_output(reply, conversation, dialect.call_id_prefix)
        dialect.commit(conversation, output, state)
        if conversation.stream:
            failure_chunk = None
            if reply.fail_after_chunks is not None and reply.fail_with == "error_event":
                failure = UpstreamFailure(message=_STREAM_FAILURE)
                sent = reply.fail_after_chunks
                failure_chunk = dialect.render_stream_error(conversation, failure, sent)
            return PacedResponse(
                dialect.render_events(conversation, output),
                headers={**headers, "cache-control": "no-cache"},
                media_type=_SSE,
                reply=reply,
                failure_chunk=failure_chunk,
            )
        payload = orjson.dumps(dialect.render_json(conversation, output))
        if not reply.paced:
            return Response(payload, headers=headers, media_type="application/json")
        chunks = split_in_two(payload) if reply.fail_after_chunks is not None else [payload]
        return PacedResponse(chunks, headers=headers, reply=reply)

    return complete


def count_tokens_endpoint(state: MockState) -> Endpoint:
    """``POST /v1/messages/count_tokens``: logged, never consumes a scripted reply."""

    async def count_tokens(request: Request) -> Response:
        body = await _read(request, anthropic.ANTHROPIC, state)
        try:
            if not isinstance(body, dict):
                raise BadRequest("The request body is not a valid JSON object.")
            payload = orjson.dumps(anthropic.count_tokens(body))
        except BadRequest as exc:
            return _error(anthropic.ANTHROPIC, exc.failure, {})
        return Response(payload, media_type="application/json")

    return count_tokens


async def _read(request: Request, dialect: Dialect, state: MockState) -> Any:
    """The JSON body (``None`` when it is not JSON), logged in the state's request log."""
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    fields = body if isinstance(body, dict) else {}
    model = fields.get("model")
    state.record(
        path=request.url.path,
        query=request.url.query,
        api=dialect.api,
        model=model if isinstance(model, str) else None,
        stream=fields.get("stream") is True,
        headers=request.headers.items(),
        body=body if body is not None else raw.decode(errors="replace"),
    )
    return body


def _error(
    dialect: Dialect,
    failure: UpstreamFailure,
    headers: dict[str, str],
    reply: Reply | None = None,
) -> PacedResponse:
    if failure.retry_after is not None:
        headers = {**headers, "retry-after": f"{failure.retry_after:g}"}
    body = orjson.dumps(dialect.render_error(failure))
    return PacedResponse([body], status_code=failure.status, headers=headers, reply=reply)
