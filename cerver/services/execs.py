"""Commands and files on a session's sandbox (``/run``, ``/run/stream``, ``/files``)."""

from __future__ import annotations

from cerver.errors import InvalidRequest
from cerver.services.metered import MeteredSandbox
from cerver.services.plugins import ComputePool
from cerver.services.sessions import SessionService
from cerver.store import SessionRecord, Store

__all__ = ["ExecService"]


class ExecService:
    def __init__(self, store: Store, sessions: SessionService, computes: ComputePool) -> None:
        self._store = store
        self._sessions = sessions
        self._computes = computes

    async def sandbox(self, session: SessionRecord) -> MeteredSandbox:
        """The session's sandbox, metered into the session's metrics.

        Raises:
            SessionClosed: the session is closed.
            Conflict: the session is paused (resume it first).
            InvalidRequest: the session is transcript-only (no compute).
        """
        self._sessions.ensure_active(session)
        if not (session.provider and session.sandbox_id):
            raise InvalidRequest(
                f'Session {session.id!r} has no compute (it was created with "compute": null). '
                "Create the session with a compute provider, e.g. "
                '"compute": {"provider": "local"}.',
                context={"session_id": session.id},
            )
        inner = await self._computes.sandbox(session.provider, session.sandbox_id)
        return MeteredSandbox(inner, session.id, self._store.sessions)
