"""Placement: which compute a session gets, and provisioning it with fallback.

Used by session creation, moves, resume and live stress tests. The router ranks the catalog;
provisioning tries the recommendation, then (when the policy allows it) each provider of
``fallback_order`` in turn, recording every failed attempt in the report. Every provisioning,
success or failure, is folded into the learned profiles.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

from cerver.errors import ComputeError, InvalidRequest
from cerver.options import PluginOptions
from cerver.placement import Catalog, ProviderEntry, RoutingReport, route
from cerver.services.computes import ComputeService
from cerver.services.plugins import ComputePool
from cerver.services.sandbox_policy import SandboxPolicy
from cerver.store import SessionRecord, Store
from cerver.telemetry import metrics
from compute.base import Sandbox, SandboxSpec

__all__ = ["Placement", "PlacementService"]

log = logging.getLogger("cerver.placement")


@dataclass(frozen=True, slots=True)
class Placement:
    """A provisioned sandbox and how it was chosen."""

    provider: str
    compute_id: str | None
    sandbox: Sandbox
    provision_time_ms: float
    routing: RoutingReport
    #: The provider's options the sandbox was created with (``None``: none were given).
    options: PluginOptions | None = None

    def session_values(self) -> dict[str, Any]:
        options = self.options.model_dump(mode="json", exclude_unset=True) if self.options else {}
        return {
            "provider": self.provider,
            "compute_id": self.compute_id,
            "sandbox_id": self.sandbox.sandbox_id,
            "compute_options": options or None,
            "provision_time_ms": self.provision_time_ms,
            "routing": self.routing,
        }


class PlacementService:
    def __init__(
        self,
        store: Store,
        computes: ComputePool,
        registered: ComputeService,
        catalog: Catalog,
        policy: SandboxPolicy | None = None,
    ) -> None:
        self._store = store
        self._computes = computes
        self.registered = registered
        self.catalog = catalog
        self.policy = policy or SandboxPolicy()

    async def entries(self, account_id: str | None) -> list[ProviderEntry]:
        """The catalog as ``account_id`` sees it: ``relay`` is live only with an online
        registered compute."""
        entries = self.catalog.entries(await self._store.profiles.all())
        online = account_id is not None and await self.registered.pick_online(account_id)
        return [
            dataclasses.replace(
                e,
                status="needs_credentials",
                note="No online registered compute: run `cerver relay` and POST "
                "/v2/computes/register.",
            )
            if e.name == "relay" and not online
            else e
            for e in entries
        ]

    async def route(
        self,
        account_id: str,
        requirements: dict[str, Any] | None,
        policy: dict[str, Any] | None,
        *,
        workload: str | None = None,
    ) -> RoutingReport:
        """The routing report; raises NoProviderQualifies (409) or InvalidRequest."""
        return route(await self.entries(account_id), requirements, policy, workload=workload)

    async def explicit_report(
        self, account_id: str, provider: str, compute_id: str | None
    ) -> RoutingReport:
        """The report for a caller's explicit choice. Raises NotFound for an unknown (or
        another account's) compute id."""
        if compute_id is not None:
            await self.registered.get(account_id, compute_id)  # NotFound for others' ids
            return {
                "recommended_provider": "relay",
                "compute_id": compute_id,
                "confidence": "high",
                "primary_reason": f"Registered compute {compute_id} chosen by the request",
                "secondary_reasons": [],
                "fallback_order": [],
                "canary_run": False,
                "mode": "pinned",
            }
        return {
            "recommended_provider": provider,
            "confidence": "high",
            "primary_reason": "Chosen by the request",
            "secondary_reasons": [],
            "fallback_order": [],
            "canary_run": False,
            "mode": "pinned",
        }

    def options(
        self,
        provider: str,
        raw: dict[str, Any] | None,
        *,
        current: SessionRecord | None = None,
    ) -> PluginOptions:
        """``raw`` validated against ``provider``'s ``Options``.

        Without ``raw``, the ``current`` session's options carry over when it stays on the
        same provider.

        Raises:
            UnknownPlugin: no such provider.
            InvalidRequest: a bad option; the message names the field and the provider.
        """
        if not raw and current is not None and current.provider == provider:
            raw = current.compute_options
        return self._computes.registry.options(provider, raw)

    async def provision(
        self,
        account_id: str,
        session_id: str,
        report: RoutingReport,
        requirements: dict[str, Any] | None,
        *,
        fallback: bool,
        options: PluginOptions | None = None,
    ) -> Placement:
        """Create a sandbox on the report's provider, falling back along ``fallback_order``.

        ``options`` (validated for the recommended provider) go to that provider only; a
        fallback provider is created with its defaults.

        Raises:
            InvalidRequest: the timeout exceeds what the provider allows; network or limits
                beyond what the gateway allows (:class:`SandboxPolicy`).
            NotConfigured: the provider cannot run on this host (e.g. local without
                bubblewrap); the message names the fix.
            ComputeError: every attempted provider failed (each failure is in the context).
        """
        req = requirements or {}
        self.policy.network(req)  # both raise before anything is provisioned
        self.policy.limits(req)
        order = [report["recommended_provider"]]
        if fallback:
            order += list(report.get("fallback_order", []))
        attempts: list[dict[str, Any]] = []
        for provider in order:
            compute_id = (
                report.get("compute_id") if provider == report["recommended_provider"] else None
            )
            given = options if provider == report["recommended_provider"] else None
            try:
                placement = await self._create(
                    account_id, session_id, provider, compute_id, req, given
                )
            except ComputeError as exc:
                log.warning("Provisioning on %s failed: %s", provider, exc)
                await self._store.profiles.observe(provider, ok=False)
                attempts.append({"provider": provider, "error": exc.message})
                continue
            routing = dict(report)
            if attempts:
                routing.update(
                    recommended_provider=provider,
                    fallback_used=True,
                    attempts=attempts,
                    fallback_order=order[len(attempts) + 1 :],
                )
            return dataclasses.replace(placement, routing=routing)
        raise ComputeError(
            "Provisioning failed on "
            + "; ".join(f"{a['provider']}: {a['error']}" for a in attempts)
            + ". Retry, or choose another provider (GET /v2/providers).",
            context={"routing": {**report, "attempts": attempts}},
            retryable=True,
        )

    async def _create(
        self,
        account_id: str,
        session_id: str,
        provider: str,
        compute_id: str | None,
        req: dict[str, Any],
        options: PluginOptions | None,
    ) -> Placement:
        compute = self._computes.provider(provider)
        timeout = int(req.get("timeout_minutes") or 60)
        if timeout * 60 > compute.capabilities.max_timeout_s:
            raise InvalidRequest(
                f"requirements.timeout_minutes={timeout} exceeds what {provider!r} allows "
                f"({compute.capabilities.max_timeout_s // 60} minutes).",
                context={"provider": provider, "timeout_minutes": timeout},
            )
        if provider == "relay" and compute_id is None:
            record = await self.registered.pick_online(account_id)
            compute_id = record.id if record else None
        spec = SandboxSpec(
            session_id=session_id,
            network=self.policy.network(req),
            timeout_minutes=timeout,
            compute_id=compute_id,
            limits=self.policy.limits(req),
            options=options,
        )
        started = time.perf_counter()
        try:
            sandbox = await compute.create(spec)
        except ComputeError:
            metrics.sandbox_provisioned(provider, time.perf_counter() - started, ok=False)
            raise
        provision_ms = (time.perf_counter() - started) * 1000
        metrics.sandbox_provisioned(provider, provision_ms / 1000, ok=True)
        await self._store.profiles.observe(provider, startup_ms=provision_ms)
        self._computes.remember(provider, sandbox)
        return Placement(provider, compute_id, sandbox, provision_ms, {}, options)
