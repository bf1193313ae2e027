"""Commands and files on a session's sandbox (``/run``, ``/run/stream``, ``/files``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping

from cerver.errors import InvalidRequest
from cerver.services.plugins import ComputePool
from cerver.services.sessions import SessionService
from cerver.store import SessionRecord, Store
from cerver.types import ExecResult
from compute.base import ExecChunk, Sandbox

__all__ = ["ExecService"]


class ExecService:
    def __init__(self, store: Store, sessions: SessionService, computes: ComputePool) -> None:
        self._store = store
        self._sessions = sessions
        self._computes = computes

    async def sandbox(self, session: SessionRecord) -> Sandbox:
        """The session's sandbox. Raises InvalidRequest for a transcript-only session."""
        self._sessions.ensure_open(session)
        if not (session.provider and session.sandbox_id):
            raise InvalidRequest(
                f'Session {session.id!r} has no compute (it was created with "compute": null). '
                'Attach one with POST /v2/sessions/{id}/compute {"provider": "local"}, or create '
                "the session with a compute provider.",
                context={"session_id": session.id},
            )
        return await self._computes.sandbox(session.provider, session.sandbox_id)

    async def run(
        self, session: SessionRecord, code: str, *, timeout: float, env: Mapping[str, str] | None
    ) -> ExecResult:
        sandbox = await self.sandbox(session)
        result = await sandbox.exec(code, timeout=timeout, env=env)
        await self._store.sessions.record_exec(session.id, result.duration_ms)
        return result

    async def run_stream(
        self, session: SessionRecord, code: str, *, timeout: float, env: Mapping[str, str] | None
    ) -> AsyncIterator[ExecChunk]:
        """Stream a command's output; the stream-open latency goes to the session's metrics."""
        sandbox = await self.sandbox(session)
        started = time.perf_counter()
        open_ms: float | None = None
        async for chunk in sandbox.exec_stream(code, timeout=timeout, env=env):
            if open_ms is None:
                open_ms = (time.perf_counter() - started) * 1000
            yield chunk
        await self._store.sessions.record_exec(
            session.id, (time.perf_counter() - started) * 1000, stream_open_ms=open_ms or 0.0
        )
