"""Per-request telemetry as pure ASGI middleware: ids, a server span, one access log line.

Every HTTP response carries ``X-Request-Id`` (the client's own, when it sent a sane one) and
``traceparent`` (W3C; continuing the client's trace when it sent one), also when tracing is
off, so a client can quote either when it reports a problem. The ids are bound to the request's
context, so runs started by the request record its trace id and log lines carry both ids.

Cheap on the hot path: two random ids and two headers per request; a span only when tracing is
on; the access line only when ``cerver.access`` logs at INFO. It logs the method, the path (never
the query string, which may hold a proxy run token), status and duration.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cerver.telemetry import tracing

__all__ = ["RequestTelemetry"]

access_log = logging.getLogger("cerver.access")


class RequestTelemetry:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = traceparent = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"traceparent":
                traceparent = value.decode("latin-1")
        if not tracing.enabled():
            ids = tracing.new_request_ids(request_id, traceparent)
            await self._serve(scope, receive, send, ids, None)
            return
        method = scope["method"]
        attributes = {"http.request.method": method, "url.path": scope["path"]}
        with tracing.span(method, attributes, server=True, parent_traceparent=traceparent) as span:
            ids = tracing.new_request_ids(request_id, traceparent)
            if (own := tracing.span_ids(span)) is not None:
                ids = tracing.RequestIds(ids.request_id, *own)
            await self._serve(scope, receive, send, ids, span)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, ids: tracing.RequestIds, span: Any
    ) -> None:
        started = time.perf_counter()
        status = 500
        headers = [
            (b"x-request-id", ids.request_id.encode("latin-1")),
            (b"traceparent", ids.traceparent.encode()),
        ]

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        token = tracing.bind_request(ids)
        try:
            await self.app(scope, receive, send_with_ids)
        finally:
            if span is not None:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.update_name(f"{scope['method']} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(scope, status, started)
            tracing.unbind_request(token)


def _log_access(scope: Scope, status: int, started: float) -> None:
    fields = {
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    access_log.info("%s %s %d", scope["method"], scope["path"], status, extra={"fields": fields})
