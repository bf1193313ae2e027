"""Pure ASGI middleware (no BaseHTTPMiddleware on the hot path)."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cerver.api.strict_json import find_unstorable
from cerver.errors import CerverError, InvalidRequest, PayloadTooLarge
from cerver.failures import Failure

__all__ = ["RequestGuard"]

# Bodies FastAPI parses as JSON: no content type, application/json, anything+json.
_JSON_TYPES = (b"application/json", b"+json")
# Model providers' wire formats pass through the proxy untouched and are never stored, so
# their bodies (a tool's binary output holding a NUL…) are not held to the store's rules.
_PASS_THROUGH = ("/v2/proxy/",)


class _ClientGone(Exception):
    """The client disconnected before its body arrived: there is no one to answer."""


class RequestGuard:
    """Refuse, before any handler runs, what no route can take. Nothing is stored for them.

    * a body over ``max_bytes`` → 413, whether announced by ``Content-Length`` or counted as
      it arrives (chunked);
    * a NUL character in the path or the query string → 400 (the store cannot hold one);
    * a JSON body holding a value the store cannot hold (:mod:`cerver.api.strict_json`) →
      400 naming where it is.

    A request with a body is read in full first (at most ``max_bytes``, which handlers did
    anyway) and replayed to the app; a request without one passes straight through.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            await _refuse(
                send,
                InvalidRequest(
                    "The URL contains a NUL character (%00), which no id or filter can hold. "
                    "Remove it.",
                    context={"problem": "nul_character"},
                ),
            )
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _refuse(send, self._too_large())
            return
        if (length is None or length == b"0") and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(receive)
        except _ClientGone:
            return
        if body is None:
            await _refuse(send, self._too_large())
            return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip()
        if (not content_type or content_type.endswith(_JSON_TYPES)) and not scope[
            "path"
        ].startswith(_PASS_THROUGH):
            found = find_unstorable(body)
            if found is not None:
                await _refuse(
                    send,
                    InvalidRequest(
                        found.message,
                        context={"loc": list(found.loc), "problem": found.problem},
                    ),
                )
                return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` as soon as it passes ``max_bytes``."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"Request body larger than {self.max_bytes} bytes. Send less, or raise "
            "CERVER_MAX_BODY_BYTES on the gateway.",
            context={"max_bytes": self.max_bytes},
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that hands the app the buffered body, then the client's later messages
    (a disconnect, which streaming responses listen for)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, error: CerverError) -> None:
    payload = orjson.dumps(Failure.from_error(error).to_json())
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
