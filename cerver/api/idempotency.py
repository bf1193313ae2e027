"""``Idempotency-Key`` on POSTs, as pure ASGI middleware.

The first request with a key runs and its answer is stored for 24 hours; a retry with the
same key and the same request gets the stored answer (``Idempotent-Replayed: true``) without
running again. The same key with a different request is a 422; a retry while the first is
still running is a 409. A 5xx, 409 or 429 answer is not stored, so the request can be
retried. A streamed (SSE) answer cannot be replayed: a retry gets a 409 that says where its
events can be read.
"""

from __future__ import annotations

import hashlib

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cerver.errors import (
    AuthenticationFailed,
    CerverError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdempotentStream,
    InvalidRequest,
)
from cerver.failures import Failure
from cerver.gateway import Gateway

__all__ = ["IdempotencyMiddleware"]

_MAX_KEY_LENGTH = 200
# Answers that say "not now" rather than "no" (a busy session, rate limits): not stored, so a
# retry with the same key can still run.
_RETRYABLE = {409, 429}


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", ())) if scope["type"] == "http" else {}
        key = headers.get(b"idempotency-key")
        if scope["type"] != "http" or scope["method"] != "POST" or key is None:
            await self.app(scope, receive, send)
            return
        if not key or len(key) > _MAX_KEY_LENGTH:
            await _refuse(
                send,
                InvalidRequest(
                    f"Idempotency-Key must be 1 to {_MAX_KEY_LENGTH} characters.",
                    context={"max_length": _MAX_KEY_LENGTH},
                ),
            )
            return
        try:
            account = await self.gateway.auth.authenticate(_authorization(headers))
        except AuthenticationFailed:
            await self.app(scope, receive, send)  # the route answers the 401
            return
        body = await _read_body(receive)
        digest = hashlib.sha256(scope["path"].encode() + b"\n" + body).hexdigest()
        store = self.gateway.store.idempotency
        prior = await store.claim(account.id, key.decode(), digest)
        if prior is not None:
            await _replay(send, prior.request_hash == digest, prior.status_code, prior.body)
            return
        await self._run_and_store(scope, body, send, account.id, key.decode())

    async def _run_and_store(
        self, scope: Scope, body: bytes, send: Send, account_id: str, key: str
    ) -> None:
        status = 500
        streamed = False
        chunks: list[bytes] = []

        async def replay_body() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status, streamed
            if message["type"] == "http.response.start":
                status = message["status"]
                content_type = dict(message.get("headers", ())).get(b"content-type", b"")
                streamed = content_type.startswith(b"text/event-stream")
            elif message["type"] == "http.response.body" and not streamed:
                chunks.append(message.get("body", b""))
            await send(message)

        store = self.gateway.store.idempotency
        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await store.release(account_id, key)
            raise
        if status >= 500 or status in _RETRYABLE:
            await store.release(account_id, key)
        elif streamed:
            detail = (
                "The first request with this Idempotency-Key was answered as a stream, which "
                "cannot be replayed; read its events from GET /v2/sessions/{id}/events."
            )
            refusal = IdempotentStream(detail)
            await store.complete(account_id, key, refusal.status_code, _body(refusal))
        else:
            await store.complete(account_id, key, status, b"".join(chunks).decode())


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _replay(send: Send, same_request: bool, status: int, body: str) -> None:
    if not same_request:
        await _refuse(
            send,
            IdempotencyKeyReused(
                "This Idempotency-Key was used with a different request. Use a new key for a new "
                "request."
            ),
        )
    elif status == 0:
        await _refuse(
            send,
            IdempotencyKeyInUse(
                "The first request with this Idempotency-Key is still running; retry later."
            ),
        )
    else:
        await _answer(send, status, body, replayed=True)


def _body(error: CerverError) -> str:
    return orjson.dumps(Failure.from_error(error).to_json()).decode()


async def _refuse(send: Send, error: CerverError) -> None:
    await _answer(send, error.status_code, _body(error))


async def _answer(send: Send, status: int, body: str, *, replayed: bool = False) -> None:
    payload = body.encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _authorization(headers: dict[bytes, bytes]) -> str | None:
    """The request's key as a bearer header; the ``anthropic`` SDK sends it as ``x-api-key``."""
    if authorization := headers.get(b"authorization", b"").decode():
        return authorization
    api_key = headers.get(b"x-api-key", b"").decode()
    return f"Bearer {api_key}" if api_key else None
