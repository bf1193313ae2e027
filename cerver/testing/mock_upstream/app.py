"""The mock upstream as an ASGI app: the model APIs and the control API.

Model routes: ``POST /v1/messages`` (Anthropic; any query such as ``?beta=true`` is fine),
``POST /v1/messages/count_tokens``, ``POST /v1/responses``, ``POST /v1/chat/completions``,
``POST /v1beta/models/<model>:generateContent`` (also ``:streamGenerateContent?alt=sse`` and
``:countTokens``; Gemini).

Control routes, for tests and people:

* ``GET /_mock/health`` → ``{"status": "ok", "test_double": "mock-upstream", "queued",
  "requests"}``
* ``GET /_mock/requests`` → the request log (a JSON list, oldest first);
  ``DELETE /_mock/requests`` empties it.
* ``POST /_mock/script`` with a reply or a list of replies → appended to the queue
  (``{"queued": n}``); 422 with pydantic's errors when one is invalid.
* ``POST /_mock/reset`` → empties the queue and the log.

Every response carries ``x-cerver-test-double: mock-upstream``.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cerver.testing.mock_upstream.anthropic import ANTHROPIC
from cerver.testing.mock_upstream.chat import CHAT
from cerver.testing.mock_upstream.completions import (
    count_tokens_endpoint,
    endpoint,
    gemini_endpoint,
)
from cerver.testing.mock_upstream.pacing import quiet_deliberate_disconnects
from cerver.testing.mock_upstream.responses import RESPONSES
from cerver.testing.mock_upstream.script import Reply
from cerver.testing.mock_upstream.state import MockState

__all__ = ["TEST_DOUBLE_HEADER", "create_app"]

TEST_DOUBLE_HEADER = ("x-cerver-test-double", "mock-upstream")
_REPLIES = TypeAdapter(list[Reply])


def create_app(state: MockState | None = None) -> Starlette:
    """The mock upstream's ASGI app, serving ``state`` (a new, empty one by default)."""
    state = state or MockState()
    control = _Control(state)
    routes = [
        Route("/v1/messages", endpoint(ANTHROPIC, state), methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens_endpoint(state), methods=["POST"]),
        Route("/v1/responses", endpoint(RESPONSES, state), methods=["POST"]),
        Route("/v1/chat/completions", endpoint(CHAT, state), methods=["POST"]),
        Route("/v1beta/models/{target}", gemini_endpoint(state), methods=["POST"]),
        Route("/_mock/health", control.health, methods=["GET"]),
        Route("/_mock/requests", control.requests, methods=["GET", "DELETE"]),
        Route("/_mock/script", control.script, methods=["POST"]),
        Route("/_mock/reset", control.reset, methods=["POST"]),
    ]
    quiet_deliberate_disconnects()
    app = Starlette(routes=routes, middleware=[Middleware(_TestDoubleHeader)])
    app.state.mock = state
    return app


class _TestDoubleHeader:
    """Pure ASGI middleware: label every response as coming from a test double."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = tuple(part.encode() for part in TEST_DOUBLE_HEADER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def labelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), self.header]
            await send(message)

        await self.app(scope, receive, labelled)


def _json(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code, media_type="application/json")


class _Control:
    """The ``/_mock/*`` endpoints over one state."""

    def __init__(self, state: MockState) -> None:
        self.state = state

    async def health(self, request: Request) -> Response:
        return _json(
            {
                "status": "ok",
                "test_double": "mock-upstream",
                "queued": len(self.state.pending),
                "requests": len(self.state.requests),
            }
        )

    async def requests(self, request: Request) -> Response:
        if request.method == "DELETE":
            return _json({"cleared": self.state.clear_requests()})
        return _json(self.state.requests)

    async def script(self, request: Request) -> Response:
        try:
            data = orjson.loads(await request.body())
            replies = _REPLIES.validate_python(data if isinstance(data, list) else [data])
        except orjson.JSONDecodeError:
            return _json({"detail": "The body is not valid JSON."}, 400)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            return _json({"detail": errors}, 422)
        self.state.script(*replies)
        return _json({"queued": len(self.state.pending)})

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return _json({"status": "reset"})
