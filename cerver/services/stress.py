"""Stress tests: compare providers for a workload, simulated from profiles or measured live.

``simulated`` predicts from each provider's profile (learned where this gateway has observed
it, the prior otherwise) and runs nothing. ``live`` provisions ``sample_size`` sandboxes per
executable provider, runs the workload's canary command in each, tears them down, and feeds
every measurement into the learned profiles the router uses.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from cerver.errors import CerverError, InvalidRequest
from cerver.ids import new_id
from cerver.placement import ProviderEntry, unmet
from cerver.placement.router import DEFAULT_MINUTES
from cerver.services.placement import PlacementService
from cerver.services.plugins import ComputePool
from cerver.store import Store
from compute.base import SandboxSpec

__all__ = ["CANARIES", "StressService", "StressSpec"]

CANARIES: dict[str, str] = {
    "node": "node -e 'console.log(process.version)'",
    "python": "python3 -c 'import sys; print(sys.version_info[:2])'",
    "shell": "echo cerver-canary && uname -s",
}
"""The representative command per runtime (the default is ``shell``)."""

LIVE_CONCURRENCY = 5
"""Canary sandboxes provisioned at once per provider (be gentle with vendors' rate limits)."""


@dataclass(frozen=True, slots=True)
class StressSpec:
    task: str | None = None
    kind: str | None = None
    workload: str | None = None
    requirements: dict[str, Any] = field(default_factory=dict)
    providers: list[str] | None = None
    sample_size: int = 5
    mode: Literal["simulated", "live"] = "simulated"


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 2)


def _rank_score(startup_ms: float, cost_usd: float, success: float) -> float:
    return round(0.4 / (1 + startup_ms / 1000) + 0.3 / (1 + cost_usd * 10) + 0.3 * success, 4)


class StressService:
    def __init__(self, store: Store, computes: ComputePool, placement: PlacementService) -> None:
        self._store = store
        self._computes = computes
        self._placement = placement

    async def run(self, account_id: str, spec: StressSpec) -> dict[str, Any]:
        """The ranked report.

        Raises:
            InvalidRequest: an unknown provider name.
        """
        entries = {e.name: e for e in await self._placement.entries(account_id)}
        names = spec.providers or sorted(entries)
        for name in names:
            if name not in entries:
                raise InvalidRequest(
                    f"Unknown provider {name!r} in providers. Known: {', '.join(sorted(entries))}.",
                    context={"provider": name},
                )
        minutes = spec.requirements.get("timeout_minutes") or DEFAULT_MINUTES
        results = []
        for name in names:
            entry = entries[name]
            reason = unmet(entry, spec.requirements, {})
            if reason is not None:
                results.append(self._excluded(entry, reason))
            elif spec.mode == "live":
                if entry.executable:
                    results.append(await self._live(account_id, entry, spec, minutes))
                else:
                    results.append(
                        self._excluded(entry, f"cannot run live canaries (status {entry.status})")
                    )
            else:
                results.append(self._simulated(entry, minutes))
        ranked = sorted((r for r in results if r["score"] is not None), key=lambda r: -r["score"])
        for rank, result in enumerate(ranked, 1):
            result["rank"] = rank
        return {
            "stress_test_id": new_id("st"),
            "task": spec.task,
            "kind": spec.kind,
            "workload": spec.workload,
            "mode": spec.mode,
            "sample_size": spec.sample_size,
            "requirements": spec.requirements,
            "providers": results,
            "ranking": [r["provider"] for r in ranked],
            "recommended_provider": ranked[0]["provider"] if ranked else None,
            "canary_run": spec.mode == "live",
        }

    @staticmethod
    def _excluded(entry: ProviderEntry, reason: str) -> dict[str, Any]:
        return {
            "provider": entry.name,
            "status": entry.status,
            "measured": False,
            "excluded_reason": reason,
            "score": None,
            "rank": None,
        }

    @staticmethod
    def _simulated(entry: ProviderEntry, minutes: float) -> dict[str, Any]:
        exec_ms = entry.observed.exec_ms if entry.observed else None
        cost = entry.cost_usd(minutes)
        return {
            "provider": entry.name,
            "status": entry.status,
            "measured": False,
            "basis": "learned profile" if entry.observed else "prior profile",
            "startup_ms": {"p50": round(entry.startup_ms, 2), "p95": None},
            "exec_latency_ms": {"p50": round(exec_ms, 2) if exec_ms else None, "p95": None},
            "failures": None,
            "failure_rate": round(1 - entry.reliability, 4),
            "cost_estimate_usd": round(cost, 6),
            "score": _rank_score(entry.startup_ms, cost, entry.reliability),
            "rank": None,
        }

    async def _live(
        self, account_id: str, entry: ProviderEntry, spec: StressSpec, minutes: float
    ) -> dict[str, Any]:
        runtime = spec.requirements.get("runtime") or "shell"
        command = CANARIES.get(runtime, CANARIES["shell"])
        gate = asyncio.Semaphore(LIVE_CONCURRENCY)

        async def sample() -> dict[str, Any]:
            async with gate:
                return await self._sample(account_id, entry.name, command)

        samples = await asyncio.gather(*(sample() for _ in range(spec.sample_size)))
        startups = [s["startup_ms"] for s in samples if s["startup_ms"] is not None]
        execs = [s["exec_ms"] for s in samples if s["exec_ms"] is not None]
        errors = [s["error"] for s in samples if s["error"]]
        seconds = sum(s["alive_s"] for s in samples)
        cost = entry.profile.cost_per_hour_usd * seconds / 3600
        success = 1 - len(errors) / len(samples)
        p50 = _percentile(startups, 50)
        return {
            "provider": entry.name,
            "status": entry.status,
            "measured": True,
            "command": command,
            "startup_ms": {"p50": p50, "p95": _percentile(startups, 95)},
            "exec_latency_ms": {"p50": _percentile(execs, 50), "p95": _percentile(execs, 95)},
            "failures": len(errors),
            "failure_rate": round(1 - success, 4),
            "errors": errors[:5],
            "cost_estimate_usd": round(cost, 8),
            "projected_session_cost_usd": round(entry.cost_usd(minutes), 6),
            "score": _rank_score(p50 if p50 is not None else 1e9, cost, success),
            "rank": None,
        }

    async def _sample(self, account_id: str, provider: str, command: str) -> dict[str, Any]:
        """One canary: provision, run, tear down; every figure goes into the profiles."""
        sample: dict[str, Any] = {"startup_ms": None, "exec_ms": None, "error": None}
        started = time.perf_counter()
        compute_id = None
        if provider == "relay":
            record = await self._placement.registered.pick_online(account_id)
            compute_id = record.id if record else None
        spec = SandboxSpec(session_id=new_id("canary"), timeout_minutes=5, compute_id=compute_id)
        sandbox = None
        try:
            sandbox = await self._computes.provider(provider).create(spec)
            sample["startup_ms"] = (time.perf_counter() - started) * 1000
            result = await sandbox.exec(command, timeout=60)
            sample["exec_ms"] = result.duration_ms
            if result.exit_code != 0:
                sample["error"] = f"exit {result.exit_code}: {result.stderr.strip()[:200]}"
        except CerverError as exc:
            sample["error"] = exc.message
        finally:
            if sandbox is not None:
                try:
                    await sandbox.delete()
                except CerverError as exc:
                    sample["error"] = sample["error"] or f"teardown: {exc.message}"
        sample["alive_s"] = time.perf_counter() - started
        await self._store.profiles.observe(
            provider,
            startup_ms=sample["startup_ms"],
            exec_ms=sample["exec_ms"],
            ok=sample["error"] is None,
        )
        return sample
