"""A sandbox wrapper that counts every command in the session's metrics.

Harness tool calls and ``/run`` requests go through the same wrapper, so ``total_exec_count``
and the latency figures cover everything that ran in the session's compute — and so do the
process's Prometheus exec histogram and the ``sandbox.exec`` spans (:mod:`cerver.telemetry`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Mapping

from cerver.store.sessions import SessionStore
from cerver.telemetry import metrics, tracing
from cerver.types import ExecResult
from compute.base import CliHosting, ExecChunk, Sandbox

__all__ = ["MeteredSandbox"]


class MeteredSandbox(Sandbox):
    def __init__(self, inner: Sandbox, session_id: str, sessions: SessionStore) -> None:
        self.inner = inner
        self.sandbox_id = inner.sandbox_id
        self.provider = inner.provider  # type: ignore[misc]
        self.streams_exec = inner.streams_exec  # type: ignore[misc]
        self._session_id = session_id
        self._sessions = sessions

    async def exec(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        with tracing.span("sandbox.exec", self._span_attributes(command)) as span:
            result = await self.inner.exec(command, timeout=timeout, env=env)
            span.set_attribute("process.exit.code", result.exit_code)
        metrics.exec_finished(self.provider, result.duration_ms / 1000)
        await self._sessions.record_exec(self._session_id, result.duration_ms)
        return result

    async def exec_stream(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[ExecChunk]:
        started = time.perf_counter()
        open_ms: float | None = None
        # Not the current span: this block yields to the consumer (see tracing.span).
        with tracing.span("sandbox.exec", self._span_attributes(command), current=False):
            # Closed with this one: closing the inner stream is what stops the command.
            async with contextlib.aclosing(
                self.inner.exec_stream(command, timeout=timeout, env=env)
            ) as chunks:
                async for chunk in chunks:
                    if open_ms is None:
                        open_ms = (time.perf_counter() - started) * 1000
                    yield chunk
        elapsed = (time.perf_counter() - started) * 1000
        metrics.exec_finished(self.provider, elapsed / 1000, stream=True)
        await self._sessions.record_exec(self._session_id, elapsed, stream_open_ms=open_ms or 0.0)

    def _span_attributes(self, command: str) -> dict[str, object]:
        attributes: dict[str, object] = {
            "cerver.compute.provider": self.provider,
            "cerver.sandbox.id": self.sandbox_id,
            "cerver.session.id": self._session_id,
        }
        if tracing.capture_content():  # a command may hold what a user typed
            attributes["process.command_line"] = tracing.content(command)
        return attributes

    async def read_file(self, path: str) -> bytes:
        return await self.inner.read_file(path)

    async def cli_hosting(self) -> CliHosting:
        return await self.inner.cli_hosting()

    async def write_file(self, path: str, data: bytes) -> None:
        await self.inner.write_file(path, data)

    async def list_files(self, path: str = ".") -> list[str]:
        return await self.inner.list_files(path)

    async def install_package(self, packages: list[str], *, manager: str = "pip") -> ExecResult:
        return await self.inner.install_package(packages, manager=manager)

    async def get_state(self) -> bytes:
        return await self.inner.get_state()

    async def set_state(self, archive: bytes) -> None:
        await self.inner.set_state(archive)

    async def delete(self) -> None:
        await self.inner.delete()
