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
from collections.abc import Iterable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cerver.api.compat.errors import compat_error_body
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
from cerver.store.idempotency import StoredResponse

__all__ = ["IdempotencyMiddleware"]

_MAX_KEY_LENGTH = 200
# Answers that say "not now" rather than "no" (a busy session, rate limits): not stored, so a
# retry with the same key can still run.
_RETRYABLE = {409, 429}
# The answer's headers replayed with its body: the session, run, harness and model it names.
_REPLAYED_HEADER_PREFIX = b"x-cerver-"


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
                scope["path"],
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
            await _replay(send, scope["path"], prior, same_request=prior.request_hash == digest)
            return
        await self._run_and_store(scope, body, send, account.id, key.decode())

    async def _run_and_store(
        self, scope: Scope, body: bytes, send: Send, account_id: str, key: str
    ) -> None:
        status = 500
        streamed = False
        chunks: list[bytes] = []
        kept: list[tuple[str, str]] = []

        async def replay_body() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status, streamed
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", ())
                content_type = dict(headers).get(b"content-type", b"")
                streamed = content_type.startswith(b"text/event-stream")
                kept.extend(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in headers
                    if name.lower().startswith(_REPLAYED_HEADER_PREFIX)
                )
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
            await store.complete(
                account_id, key, refusal.status_code, _body(scope["path"], refusal)
            )
        else:
            await store.complete(account_id, key, status, b"".join(chunks).decode(), kept)


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _replay(send: Send, path: str, prior: StoredResponse, *, same_request: bool) -> None:
    if not same_request:
        await _refuse(
            send,
            path,
            IdempotencyKeyReused(
                "This Idempotency-Key was used with a different request. Use a new key for a new "
                "request."
            ),
        )
    elif prior.status_code == 0:
        await _refuse(
            send,
            path,
            IdempotencyKeyInUse(
                "The first request with this Idempotency-Key is still running; retry later."
            ),
        )
    else:
        await _answer(send, prior.status_code, prior.body, prior.headers or (), replayed=True)


def _body(path: str, error: CerverError) -> str:
    """The error in the shape the path's clients parse (a provider's own under ``/v1``)."""
    failure = Failure.from_error(error)
    body = compat_error_body(
        path, error.status_code, failure.message, failure.code.value, dict(failure.context)
    )
    return orjson.dumps(body if body is not None else failure.to_json()).decode()


async def _refuse(send: Send, path: str, error: CerverError) -> None:
    await _answer(send, error.status_code, _body(path, error))


async def _answer(
    send: Send,
    status: int,
    body: str,
    kept: Iterable[tuple[str, str]] = (),
    *,
    replayed: bool = False,
) -> None:
    payload = body.encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in kept),
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
