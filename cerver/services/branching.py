"""Child sessions: spawn (a new session that inherits the transcript) and fork (at a seq).

A branch is an ordinary session with ``parent_session_id`` set: the same end user and system
prompt, its own harness and compute, and a copy of the parent's transcript (up to a point)
written in one transaction. When both sessions have compute, the parent's workspace files are
copied too (``get_state`` → ``set_state``), so a branch starts from the same files. Fan-out
variants are branches taken from one :class:`Snapshot`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cerver.errors import InvalidRequest
from cerver.ids import new_id
from cerver.services.locks import SessionLocks
from cerver.services.plugins import ComputePool
from cerver.services.sessions import ComputeChoice, HarnessChoice, SessionService
from cerver.store import SessionRecord, Store
from cerver.types import Entry

__all__ = ["BranchingService", "Snapshot"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What branches of ``session`` start from: its transcript up to ``at_seq`` and, when it
    has compute, an archive of its workspace."""

    session: SessionRecord
    entries: list[Entry]
    at_seq: int
    workspace: bytes | None = None


class BranchingService:
    def __init__(
        self, store: Store, locks: SessionLocks, sessions: SessionService, computes: ComputePool
    ) -> None:
        self._store = store
        self._locks = locks
        self._sessions = sessions
        self._computes = computes

    async def snapshot(
        self, parent: SessionRecord, *, at_seq: int | None = None, files: bool = True
    ) -> Snapshot:
        """Read what a branch of ``parent`` inherits.

        Args:
            at_seq: keep entries up to this seq (default: all). The workspace is copied as it
                is now: files have no history to rewind.
            files: also archive the workspace (when the parent has compute and is open).

        Raises:
            InvalidRequest: ``at_seq`` is past the end of the transcript.
            ComputeError: the parent's workspace could not be archived.
        """
        last = parent.next_seq - 1
        if at_seq is not None and not 0 <= at_seq <= last:
            raise InvalidRequest(
                f"at_seq={at_seq} is outside session {parent.id!r}'s transcript (seq 0..{last}).",
                context={"session_id": parent.id, "at_seq": at_seq, "last_seq": last},
            )
        at = last if at_seq is None else at_seq
        entries = await self._store.transcript.entries(parent.id, limit=at) if at else []
        workspace = None
        if files and parent.provider and parent.sandbox_id and parent.status != "closed":
            sandbox = await self._computes.sandbox(parent.provider, parent.sandbox_id)
            workspace = await sandbox.get_state()
        return Snapshot(parent, entries, at, workspace)

    async def branch(
        self,
        account_id: str,
        source: Snapshot,
        *,
        harness: HarnessChoice | None = None,
        compute: ComputeChoice | None = None,
        kind: str = "spawn",
        metadata: dict[str, Any] | None = None,
    ) -> SessionRecord:
        """Create a child session of ``source.session`` that starts from ``source``.

        The child keeps the parent's harness and model unless ``harness`` says otherwise, and
        gets compute from the parent's provider unless ``compute`` says otherwise
        (``ComputeChoice("none")`` for a transcript-only child).

        Raises:
            UnknownPlugin, NotConfigured, MissingDependency: the harness cannot run here.
            ComputeError: provisioning or restoring the workspace failed.
        """
        parent = source.session
        choice = harness or HarnessChoice()
        name = self._sessions.resolve_harness(HarnessChoice(choice.name or parent.harness))[0]
        model = choice.model or (parent.model if name == parent.harness else None)
        # The parent's options were validated for the parent's harness: only it inherits them.
        inherited = parent.harness_options if name == parent.harness else {}
        if compute is None:
            compute = (
                ComputeChoice("provider", parent.provider, options=parent.compute_options or {})
                if parent.provider
                else ComputeChoice("none")
            )
        child = await self._sessions.create(
            account_id,
            harness=HarnessChoice(name, model, choice.options or inherited),
            compute=compute,
            user=parent.user,
            session_name=parent.session_name,
            task=parent.task,
            workload=parent.workload,
            repo=parent.repo,
            system_prompt=parent.system_prompt,
            requirements=parent.requirements,
            metadata={
                **(metadata or {}),
                "branched_from": {
                    "session_id": parent.id,
                    "at_seq": source.at_seq,
                    "kind": kind,
                },
            },
            parent_session_id=parent.id,
        )
        if source.workspace is not None and child.provider and child.sandbox_id:
            sandbox = await self._computes.sandbox(child.provider, child.sandbox_id)
            await sandbox.set_state(source.workspace)
        if not source.entries:
            return child
        reset = {"seq": None, "created_at": None}
        copies = [e.model_copy(update=reset) for e in source.entries]
        async with self._locks.hold(child.id, new_id("run")) as writer:
            await writer.append_many(copies)
        return await self._sessions.get(account_id, child.id)

    async def spawn(
        self,
        account_id: str,
        parent: SessionRecord,
        *,
        harness: HarnessChoice | None = None,
        compute: ComputeChoice | None = None,
    ) -> SessionRecord:
        """A child that inherits the whole transcript (and files), on its own compute."""
        source = await self.snapshot(parent, files=compute is None or compute.mode != "none")
        return await self.branch(account_id, source, harness=harness, compute=compute)

    async def fork(
        self, account_id: str, parent: SessionRecord, *, at_seq: int | None = None
    ) -> SessionRecord:
        """A child with the parent's harness and compute provider, branched at ``at_seq``."""
        source = await self.snapshot(parent, at_seq=at_seq)
        return await self.branch(account_id, source, kind="fork")
