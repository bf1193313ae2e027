"""Running the mock upstream: in a background thread for tests, in the foreground for people.

:class:`MockUpstream` serves a real uvicorn server on ``127.0.0.1`` and a free port from a
daemon thread with its own event loop, so SDKs, CLIs and subprocesses reach it over TCP
exactly as they would reach a provider. :func:`serve` is what ``cerver mock-upstream`` runs.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import anyio.to_thread
import uvicorn

from cerver.providers import providers
from cerver.testing.mock_upstream.app import create_app
from cerver.testing.mock_upstream.script import Reply
from cerver.testing.mock_upstream.state import MockState

__all__ = ["MockUpstream", "serve"]

_START_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 5.0


class MockUpstream:
    """A mock upstream served from a background thread.

    Use it as a context manager (sync or async), or call :meth:`start` and :meth:`stop`::

        with MockUpstream() as upstream:
            upstream.script(Reply(text="hi"))
            client = AsyncAnthropic(base_url=upstream.anthropic_base_url, api_key="x")

    Args:
        state: the queue and log to serve (a new one by default); share one to keep the
            log across restarts.
        host: the interface to bind.
        port: the port; 0 picks a free one.
    """

    def __init__(
        self, state: MockState | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.state = state or MockState()
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT``; raises ``RuntimeError`` before :meth:`start`."""
        if self._socket is None:
            raise RuntimeError("The mock upstream is not running; call start() first.")
        return f"http://{self._host}:{self._socket.getsockname()[1]}"

    def base_url_for(self, provider: str) -> str:
        """The base URL standing in for model ``provider``: the mock's API in the dialect the
        provider registry declares for it (:attr:`ModelProvider.mock_dialect`).

        Raises:
            UnknownPlugin: the registry knows no model provider of that name.
        """
        return providers.model(provider).mock_base_url(self.url)

    @property
    def anthropic_base_url(self) -> str:
        """The base URL for Anthropic clients (no ``/v1``; ``ANTHROPIC_BASE_URL``)."""
        return self.base_url_for("anthropic")

    @property
    def openai_base_url(self) -> str:
        """The base URL for OpenAI clients (``url + "/v1"``; Codex's ``base_url``)."""
        return self.base_url_for("openai")

    @property
    def gemini_base_url(self) -> str:
        """The base URL for Gemini clients (no ``/v1beta``; ``GOOGLE_GEMINI_BASE_URL``)."""
        return self.base_url_for("gemini")

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The request log, oldest first (see :class:`MockState`)."""
        return self.state.requests

    def script(self, *replies: Reply | Mapping[str, Any]) -> None:
        """Queue replies, answered first in, first out."""
        self.state.script(*replies)

    def reset(self) -> None:
        """Empty the queue and the request log."""
        self.state.reset()

    def start(self) -> Self:
        """Bind the port and serve until :meth:`stop`; returns once requests are accepted.

        Raises:
            RuntimeError: already running, or the server failed to start within 5 s.
            OSError: the port cannot be bound.
        """
        if self._thread is not None:
            raise RuntimeError("The mock upstream is already running.")
        sock = _bind(self._host, self._port)
        # No log config and no log level: leave the process's logging as it is.
        config = uvicorn.Config(
            create_app(self.state),
            log_config=None,
            log_level=None,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._socket, self._server = sock, uvicorn.Server(config)
        self._failure = None
        self._thread = threading.Thread(target=self._run, name="mock-upstream", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("The mock upstream failed to start.") from self._failure
            time.sleep(0.002)
        return self

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # reported by start()
            self._failure = exc

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)


def serve(host: str = "127.0.0.1", port: int = 8790) -> None:
    """Serve a mock upstream in the foreground until interrupted, after a banner that says
    it is a test double and how to point clients at it. ``port=0`` picks a free port."""
    sock = _bind(host, port)
    url = f"http://{host}:{sock.getsockname()[1]}"
    print(
        "\n".join(
            [
                "Cerver mock upstream: a TEST DOUBLE, not a model provider.",
                "Its default replies start with '[mock upstream]'; script others with",
                f"POST {url}/_mock/script.",
                f"  Anthropic clients:  ANTHROPIC_BASE_URL={url}",
                f"  OpenAI clients:     OPENAI_BASE_URL={url}/v1",
                f"  Request log:        {url}/_mock/requests",
                "",
            ]
        ),
        flush=True,
    )
    config = uvicorn.Config(create_app(), lifespan="off", timeout_graceful_shutdown=1)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def _bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (uvicorn listens on it), closed if binding fails."""
    # Without TCP_NODELAY on the accepted connections (asyncio sets it only when proto is
    # IPPROTO_TCP; Linux also inherits it from the listener) every response waits ~40 ms for
    # a delayed ACK, which would swamp the latencies the benchmarks measure.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
