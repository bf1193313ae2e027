"""Moving a live session's compute: to another provider or registered compute, or to a
snapshot (pause) and back (resume). Files travel as a ``get_state`` archive.

Each move holds the session's turn lock, so no turn or command runs on a sandbox while it is
being replaced; the old sandbox is released only after the new one holds the files and the
session row points at it. A failure before that leaves the session where it was.
"""

from __future__ import annotations

import logging
from typing import Any

from cerver.errors import Conflict, InvalidRequest
from cerver.ids import new_id
from cerver.options import PluginOptions
from cerver.services.locks import SessionLocks
from cerver.services.placement import Placement, PlacementService
from cerver.services.plugins import ComputePool
from cerver.services.sessions import ComputeChoice, SessionService
from cerver.store import SessionRecord, Store
from cerver.types import Entry

__all__ = ["MoveService"]

log = logging.getLogger("cerver.moves")


class MoveService:
    def __init__(
        self,
        store: Store,
        locks: SessionLocks,
        sessions: SessionService,
        computes: ComputePool,
        placement: PlacementService,
    ) -> None:
        self._store = store
        self._locks = locks
        self._sessions = sessions
        self._computes = computes
        self._placement = placement

    async def _target(
        self, session: SessionRecord, choice: ComputeChoice, policy: dict[str, Any] | None
    ) -> tuple[dict[str, Any], bool, PluginOptions | None]:
        """Where to go, whether to fall back, and the options for the chosen provider."""
        if choice.compute_id is not None or choice.provider is not None:
            provider = (
                "relay"
                if choice.compute_id is not None
                else self._computes.canonical(choice.provider or "")
            )
            options = self._placement.options(provider, choice.options, current=session)
            report = await self._placement.explicit_report(
                session.account_id, provider, choice.compute_id
            )
            return report, False, options
        report = await self._placement.route(
            session.account_id, session.requirements, policy or session.policy
        )
        return report, True, None

    async def move(
        self,
        session: SessionRecord,
        choice: ComputeChoice,
        policy: dict[str, Any] | None = None,
        *,
        reason: str = "requested",
    ) -> Entry:
        """Move the session's workspace to ``choice`` (or where ``policy`` routes it).

        Raises:
            SessionClosed: the session is closed.
            InvalidRequest: the session has no compute (transcript-only or paused).
            NotFound / UnknownPlugin / NoProviderQualifies: the target is unknown or nothing
                qualifies.
            ComputeError: snapshot, provisioning or restore failed (the session stays put).
        """
        self._sessions.ensure_open(session)
        if session.status == "paused" or not (session.provider and session.sandbox_id):
            hint = (
                ": resume it with POST /v2/sessions/{id}/resume {provider}."
                if session.status == "paused"
                else " (it is transcript-only)."
            )
            raise InvalidRequest(
                f"Session {session.id!r} has no running compute to move{hint}",
                context={"session_id": session.id, "status": session.status},
            )
        report, fallback, options = await self._target(session, choice, policy)
        async with self._locks.hold(session.id, new_id("run")) as writer:
            current = writer.session
            old = await self._computes.sandbox(current.provider or "", current.sandbox_id or "")
            archive = await old.get_state()
            placed = await self._placement.provision(
                session.account_id,
                session.id,
                report,
                current.requirements,
                fallback=fallback,
                options=options,
            )
            await self._restore(placed, archive)
            entry = await self._record(writer, current, placed, reason, len(archive))
        await self._release(current.provider, current.sandbox_id)
        return entry

    async def pause(self, session: SessionRecord) -> SessionRecord:
        """Snapshot the workspace into the store and release the sandbox.

        Raises:
            SessionClosed: closed. Conflict: already paused. InvalidRequest: no compute.
        """
        self._sessions.ensure_open(session)
        if session.status == "paused":
            raise Conflict(f"Session {session.id!r} is already paused.")
        if not (session.provider and session.sandbox_id):
            raise InvalidRequest(f"Session {session.id!r} has no compute to pause.")
        async with self._locks.hold(session.id, new_id("run")) as writer:
            current = writer.session
            sandbox = await self._computes.sandbox(current.provider or "", current.sandbox_id or "")
            archive = await sandbox.get_state()
            await self._store.snapshots.put(session.id, archive, current.provider)
            writer.update_session(status="paused", sandbox_id=None)
            stored = await writer.append(
                Entry(
                    role="event",
                    kind="compute_switched",
                    content=f"{current.provider} -> paused",
                    provider=current.provider,
                    metadata={
                        "from": {"provider": current.provider, "sandbox_id": current.sandbox_id},
                        "to": None,
                        "reason": "paused",
                        "snapshot_bytes": len(archive),
                    },
                )
            )
            writer.emit("compute_switched", stored.model_dump(mode="json"))
        await self._release(current.provider, current.sandbox_id)
        return await self._sessions.get(session.account_id, session.id)

    async def resume(self, session: SessionRecord, choice: ComputeChoice) -> SessionRecord:
        """Restore the paused workspace on ``choice`` (default: the provider it left).

        Raises:
            Conflict: the session is not paused. ComputeError: provisioning/restore failed.
        """
        self._sessions.ensure_open(session)
        if session.status != "paused":
            raise Conflict(
                f"Session {session.id!r} is {session.status}, not paused: only a paused "
                "session resumes. Move a running one with POST /v2/sessions/{id}/compute.",
                context={"status": session.status},
            )
        if choice.provider is None and choice.compute_id is None:
            choice = ComputeChoice("provider", session.provider, session.compute_id)
        report, fallback, options = await self._target(session, choice, None)
        archive = await self._store.snapshots.get(session.id) or b""
        async with self._locks.hold(session.id, new_id("run")) as writer:
            placed = await self._placement.provision(
                session.account_id,
                session.id,
                report,
                session.requirements,
                fallback=fallback,
                options=options,
            )
            if archive:
                await self._restore(placed, archive)
            writer.update_session(status="ready")
            await self._record(writer, writer.session, placed, "resumed", len(archive))
        await self._store.snapshots.delete(session.id)
        return await self._sessions.get(session.account_id, session.id)

    async def _restore(self, placed: Placement, archive: bytes) -> None:
        try:
            await placed.sandbox.set_state(archive)
        except BaseException:
            await self._release(placed.provider, placed.sandbox.sandbox_id)
            raise

    async def _record(
        self, writer: Any, current: SessionRecord, placed: Placement, reason: str, size: int
    ) -> Entry:
        writer.update_session(**placed.session_values())
        source = current.provider if reason != "resumed" else "paused"
        stored = await writer.append(
            Entry(
                role="event",
                kind="compute_switched",
                content=f"{source} -> {placed.provider}",
                provider=placed.provider,
                metadata={
                    "from": {
                        "provider": current.provider,
                        "compute_id": current.compute_id,
                        "sandbox_id": current.sandbox_id,
                    },
                    "to": {
                        "provider": placed.provider,
                        "compute_id": placed.compute_id,
                        "sandbox_id": placed.sandbox.sandbox_id,
                    },
                    "reason": reason,
                    "snapshot_bytes": size,
                    "provision_time_ms": round(placed.provision_time_ms, 2),
                    "routing": placed.routing,
                },
            )
        )
        writer.emit("compute_switched", stored.model_dump(mode="json"))
        return stored

    async def _release(self, provider: str | None, sandbox_id: str | None) -> None:
        if not (provider and sandbox_id):
            return
        try:
            await self._computes.release(provider, sandbox_id)
        except Exception as exc:  # the session already moved; a leftover is only logged
            log.warning("Could not release %s sandbox %s: %s", provider, sandbox_id, exc)
