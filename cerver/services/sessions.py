"""The session lifecycle: create, read, append input, switch harness, close, delete."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cerver.errors import Conflict, InvalidRequest, SessionClosed
from cerver.ids import new_id
from cerver.options import PluginOptions
from cerver.providers import Endpoints
from cerver.registry import model_for_alias
from cerver.services.locks import SessionLocks
from cerver.services.placement import Placement, PlacementService
from cerver.services.plugins import ComputePool, HarnessPool
from cerver.services.runs import RunService
from cerver.settings import Settings
from cerver.store import SessionFilters, SessionRecord, Store
from cerver.store.schema import utcnow
from cerver.store.sessions import delete_session
from cerver.types import Entry, Role, Usage

__all__ = ["ComputeChoice", "HarnessChoice", "SessionService", "stored_options"]


@dataclass(frozen=True, slots=True)
class HarnessChoice:
    """A harness name (or alias), an optional model and harness options."""

    name: str | None = None
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ComputeChoice:
    """Where a session's tools run: ``routed`` (the default), a provider, or nothing."""

    mode: str = "routed"  # "routed" | "provider" | "none"
    provider: str | None = None
    compute_id: str | None = None
    #: The provider's options (validated against its ``Options`` before provisioning).
    options: dict[str, Any] = field(default_factory=dict)


def stored_options(options: PluginOptions) -> dict[str, Any]:
    """Validated options as the session stores them: the fields the request set, as JSON."""
    return options.model_dump(mode="json", exclude_unset=True)


class SessionService:
    def __init__(
        self,
        store: Store,
        locks: SessionLocks,
        harnesses: HarnessPool,
        computes: ComputePool,
        settings: Settings,
        placement: PlacementService,
        *,
        runs: RunService | None = None,
    ) -> None:
        self._placement = placement
        self._runs = runs
        self._store = store
        self._locks = locks
        self._harnesses = harnesses
        self._computes = computes
        self._settings = settings

    # -- reads -----------------------------------------------------------------------------

    async def get(self, account_id: str, session_id: str) -> SessionRecord:
        return await self._store.sessions.get(account_id, session_id)

    async def list(
        self, account_id: str, filters: SessionFilters, *, limit: int, cursor: str | None
    ) -> tuple[list[SessionRecord], str | None]:
        return await self._store.sessions.list(account_id, filters, limit=limit, cursor=cursor)

    async def transcript(
        self,
        session_id: str,
        *,
        after_seq: int = 0,
        limit: int | None = None,
        tail: int | None = None,
    ) -> list[Entry]:
        if tail is not None:
            return await self._store.transcript.tail(session_id, tail)
        return await self._store.transcript.entries(session_id, after_seq=after_seq, limit=limit)

    # -- writes ----------------------------------------------------------------------------

    def resolve_harness(
        self,
        choice: HarnessChoice,
        *,
        current: SessionRecord | None = None,
        endpoints: Endpoints | None = None,
    ) -> tuple[str, str]:
        """Canonical harness name and model for ``choice``.

        An omitted name keeps the ``current`` session's harness (or the gateway default); an
        omitted model keeps the current model when the harness stays, else the harness's own
        default model. ``endpoints`` are the caller's account's (its own keys win over the
        gateway's); the gateway's by default.

        Raises:
            UnknownPlugin: no harness has that name (with a did-you-mean).
            MissingDependency: the harness's optional SDK is not installed.
            NotConfigured: the harness's provider has no API key, neither the account's nor
                the gateway's.
        """
        fallback = current.harness if current else self._settings.default_harness
        name = self._harnesses.canonical(choice.name or fallback)
        harness = self._harnesses.get(name, endpoints)  # fails now, not at the first turn
        if choice.model:
            return name, model_for_alias(choice.name, choice.model)
        if current is not None and name == current.harness:
            return name, current.model
        return name, harness.default_model

    def harness_options(
        self, name: str, choice: HarnessChoice, *, current: SessionRecord | None = None
    ) -> PluginOptions:
        """The options ``choice`` gives the harness ``name``, validated against its ``Options``.

        Without options in ``choice``, the ``current`` session's options carry over when the
        harness stays the same; a new harness starts with none.

        Raises:
            InvalidRequest: a bad option; the message names the field and the harness.
        """
        raw = choice.options
        if not raw and current is not None and current.harness == name:
            raw = current.harness_options
        return self._harnesses.registry.options(name, raw)

    async def create(
        self,
        account_id: str,
        *,
        harness: HarnessChoice,
        compute: ComputeChoice,
        user: str | None = None,
        session_name: str | None = None,
        task: str | None = None,
        workload: str | None = None,
        repo: dict[str, Any] | None = None,
        system_prompt: str | None = None,
        requirements: dict[str, Any] | None = None,
        policy: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        parent_session_id: str | None = None,
        max_cost_usd: float | None = None,
        fallback_models: list[str] | None = None,
    ) -> SessionRecord:
        """Validate everything, provision compute, then insert the session.

        Nothing is written when validation or provisioning fails.
        """
        endpoints = await self._harnesses.endpoints_for(account_id)
        harness_name, model = self.resolve_harness(harness, endpoints=endpoints)
        options = self.harness_options(harness_name, harness)
        if parent_session_id is not None:
            await self._store.sessions.get(account_id, parent_session_id)
        session_id = new_id("sess")
        values: dict[str, Any] = {
            "id": session_id,
            "account_id": account_id,
            "user": user,
            "session_name": session_name,
            "task": task,
            "workload": workload,
            "repo": repo,
            "status": "ready",
            "harness": harness_name,
            "model": model,
            "harness_options": stored_options(options),
            "system_prompt": system_prompt,
            "requirements": requirements,
            "policy": policy,
            "metadata": metadata or {},
            "parent_session_id": parent_session_id,
            "max_cost_usd": max_cost_usd,
            "fallback_models": list(fallback_models or []),
        }
        placed = await self._place(account_id, session_id, compute, requirements, policy, workload)
        if placed is not None:
            values.update(placed.session_values())
        return await self._store.sessions.create(values)

    async def append_input(
        self,
        session: SessionRecord,
        *,
        role: Role,
        content: str,
        model: str | None = None,
        harness: str | None = None,
        usage: Usage | None = None,
        metadata: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> Entry:
        """Append a caller-written turn (no model is called)."""
        self.ensure_open(session)
        entry = Entry(
            role=role,
            content=content,
            model=model,
            harness=harness,
            usage=usage,
            metadata=metadata or {},
        )
        async with self._locks.hold(session.id, new_id("run"), wait=wait) as writer:
            if usage is not None and role == "assistant":
                writer.charge(kind="llm", usage=usage, run_id=None, harness=harness, model=model)
            writer.update_session(interaction_count=writer.session.interaction_count + 1)
            stored = await writer.append(entry)
            writer.emit("message", stored.model_dump(mode="json"))
        return stored

    async def switch_harness(
        self, session: SessionRecord, choice: HarnessChoice, *, reason: str = "requested"
    ) -> Entry | None:
        """Make ``choice`` the session's harness/model from the next turn on.

        Records a ``harness_switched`` entry; returns ``None`` when nothing changes.
        """
        self.ensure_open(session)
        endpoints = await self._harnesses.endpoints_for(session.account_id)
        name, model = self.resolve_harness(choice, current=session, endpoints=endpoints)
        options = self.harness_options(name, choice, current=session)
        if (name, model) == (session.harness, session.model) and not choice.options:
            return None
        async with self._locks.hold(session.id, new_id("run")) as writer:
            return await self.record_switch(
                writer, writer.session, name, model, stored_options(options), reason
            )

    async def record_switch(
        self,
        writer: Any,
        session: SessionRecord,
        name: str,
        model: str,
        options: dict[str, Any],
        reason: str,
    ) -> Entry:
        """Record the switch to ``name``/``model`` with ``options`` (already validated).

        A new harness gets ``options`` (none when empty); the same harness keeps its options
        unless ``options`` replaces them.
        """
        stored = self.queue_switch(writer, session, name, model, options, reason)
        await writer.flush()
        writer.emit("harness_switched", stored.model_dump(mode="json"))
        return stored

    @staticmethod
    def queue_switch(
        writer: Any,
        session: SessionRecord,
        name: str,
        model: str,
        options: dict[str, Any],
        reason: str,
    ) -> Entry:
        """Queue :meth:`record_switch`'s entry and session values on ``writer`` (written
        with its next write; nothing emitted) and return the entry, numbered."""
        entry = Entry(
            role="event",
            kind="harness_switched",
            content=f"{session.harness}:{session.model} -> {name}:{model}",
            harness=name,
            model=model,
            metadata={
                "from": {"harness": session.harness, "model": session.model},
                "to": {"harness": name, "model": model},
                "reason": reason,
            },
        )
        writer.update_session(harness=name, model=model)
        if options or name != session.harness:
            writer.update_session(harness_options=options)
        [stored] = writer.queue([entry])
        return stored

    async def close(self, session: SessionRecord) -> SessionRecord:
        """Close the session and release its sandbox; the transcript stays readable.

        A running turn is cancelled first (on whichever replica runs it).
        """
        if session.status != "closed":
            if self._runs is not None:
                await self._runs.cancel_session(session.id)
            async with self._locks.hold(session.id, new_id("run")) as writer:
                writer.update_session(status="closed", closed_at=utcnow())
            await self._release_compute(session)
        return await self._store.sessions.get(session.account_id, session.id)

    async def delete(self, session: SessionRecord) -> None:
        """Delete the session, its transcript and event log, and release its sandbox.

        A running turn is cancelled first (on whichever replica runs it).
        """
        if self._runs is not None:
            await self._runs.cancel_session(session.id)
        async with self._locks.hold(session.id, new_id("run")) as writer:
            writer.defer(delete_session(session.id))
        self._store.sessions.forget(session.id)
        self._harnesses.forget_session(session.id)
        await self._release_compute(session)

    @staticmethod
    def ensure_open(session: SessionRecord) -> None:
        """Raises SessionClosed for a closed session."""
        if session.status == "closed":
            raise SessionClosed(
                f"Session {session.id!r} is closed. Create a new session (or spawn one from it "
                "with POST /v2/sessions/{id}/spawn) to continue.",
                context={"session_id": session.id},
            )

    @classmethod
    def ensure_active(cls, session: SessionRecord) -> None:
        """Raises SessionClosed for a closed session, Conflict for a paused one."""
        cls.ensure_open(session)
        if session.status == "paused":
            raise Conflict(
                f"Session {session.id!r} is paused (its compute was released). Resume it with "
                "POST /v2/sessions/{id}/resume, optionally with a provider.",
                context={"session_id": session.id, "status": "paused"},
            )

    # -- compute ---------------------------------------------------------------------------

    async def _place(
        self,
        account_id: str,
        session_id: str,
        compute: ComputeChoice,
        requirements: dict[str, Any] | None,
        policy: dict[str, Any] | None,
        workload: str | None,
    ) -> Placement | None:
        """Route (or take the explicit choice) and provision; None for transcript-only.

        Raises:
            InvalidRequest: ``{"compute": {}}`` without provider or compute id.
            UnknownPlugin: an unknown provider name.
            NotFound: an unknown compute id.
            NoProviderQualifies: routing found nothing executable (409 with the report).
            ComputeError: provisioning failed on every provider tried.
        """
        placement = self._placement
        if compute.mode == "none":
            return None
        if compute.mode == "provider":
            if compute.provider is None and compute.compute_id is None:
                raise InvalidRequest(
                    'compute needs "provider" or "compute_id", e.g. {"provider": "local"}; '
                    'send "compute": null for a transcript-only session.'
                )
            provider = (
                "relay"
                if compute.compute_id is not None
                else self._computes.canonical(compute.provider or "")
            )
            options = placement.options(provider, compute.options)
            report = await placement.explicit_report(account_id, provider, compute.compute_id)
            return await placement.provision(
                account_id, session_id, report, requirements, fallback=False, options=options
            )
        if not requirements and not policy:
            if self._settings.default_compute is None:
                return None
            provider = self._computes.canonical(self._settings.default_compute)
            report = await placement.explicit_report(account_id, provider, None)
            report["primary_reason"] = "Gateway default compute"
            return await placement.provision(
                account_id, session_id, report, requirements, fallback=False
            )
        report = await placement.route(account_id, requirements, policy, workload=workload)
        mode = (policy or {}).get("mode", "balanced")
        return await placement.provision(
            account_id, session_id, report, requirements, fallback=mode != "pinned"
        )

    async def _release_compute(self, session: SessionRecord) -> None:
        if session.provider and session.sandbox_id:
            await self._computes.release(session.provider, session.sandbox_id)
