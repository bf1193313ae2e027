"""The router: ``requirements`` + ``policy`` → the seed's routing report.

Pure functions over catalog entries, so they are easy to test and reuse (session creation,
moves, stress tests). Steps:

1. Narrow to ``policy.allowed_providers`` (and to ``pinned_provider`` in ``pinned`` mode).
2. Drop providers that miss a requirement or a policy limit, recording why.
3. Rank the rest by the policy's mode; non-executable ones are only advisory.
4. Recommend the best executable provider; the others form ``fallback_order``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cerver.errors import InvalidRequest, NoProviderQualifies, did_you_mean
from cerver.placement.catalog import ProviderEntry

__all__ = ["PERSISTENCE", "NoProviderQualifies", "RoutingReport", "route", "score", "unmet"]

PERSISTENCE = {"low": 0, "medium": 1, "high": 2}
DEFAULT_MINUTES = 60

RoutingReport = dict[str, Any]


def unmet(entry: ProviderEntry, req: dict[str, Any], policy: dict[str, Any]) -> str | None:
    caps = entry.capabilities
    runtime = req.get("runtime")
    if runtime and runtime not in caps.runtimes:
        return f"runtime {runtime!r} not supported ({', '.join(caps.runtimes)})"
    for flag in ("package_install", "public_preview", "browser"):
        if req.get(flag) and not getattr(caps, flag):
            return f"{flag} not supported"
    level = req.get("persistence_level")
    if level and PERSISTENCE[level] > PERSISTENCE[caps.persistence]:
        return f"persistence {caps.persistence!r} below {level!r}"
    minutes = req.get("timeout_minutes") or DEFAULT_MINUTES
    if minutes * 60 > caps.max_timeout_s:
        return f"max timeout {caps.max_timeout_s // 60} min below {minutes} min"
    limit = policy.get("max_startup_ms")
    if limit is not None and entry.startup_ms > limit:
        return f"predicted startup {entry.startup_ms:.0f} ms over max_startup_ms {limit:g}"
    cap = policy.get("max_cost_usd")
    if cap is not None and entry.cost_usd(minutes) > cap:
        return f"predicted cost ${entry.cost_usd(minutes):.4f} over max_cost_usd {cap:g}"
    return None


def score(entry: ProviderEntry, mode: str, minutes: float) -> float:
    """Higher is better; each factor is in (0, 1]."""
    speed = 1 / (1 + entry.startup_ms / 1000)
    thrift = 1 / (1 + entry.cost_usd(minutes) * 10)
    weights = {
        "fastest": (0.8, 0.1, 0.1),
        "cheapest": (0.1, 0.8, 0.1),
        "resilient": (0.1, 0.1, 0.8),
    }.get(mode, (0.4, 0.3, 0.3))
    return weights[0] * speed + weights[1] * thrift + weights[2] * entry.reliability


def _primary_reason(entry: ProviderEntry, mode: str, workload: str | None) -> str:
    if mode == "pinned":
        return f"Pinned by policy to {entry.name}"
    return {
        "fastest": f"Fastest predicted startup ({entry.startup_ms:.0f} ms)",
        "cheapest": f"Lowest predicted cost (${entry.profile.cost_per_hour_usd:.2f}/hour)",
        "resilient": f"Most reliable ({entry.reliability:.1%} observed or predicted success)",
    }.get(mode, f"Best fit for {workload or 'general'} workloads")


def _secondary(entry: ProviderEntry, req: dict[str, Any], policy: dict[str, Any]) -> list[str]:
    reasons = []
    if policy.get("max_startup_ms") is not None:
        reasons.append("Startup within target")
    if req.get("public_preview"):
        reasons.append("Public preview supported")
    if req.get("package_install"):
        reasons.append("Package install supported")
    if req.get("runtime"):
        reasons.append(f"Runtime {req['runtime']} supported")
    if entry.observed is not None and entry.observed.provisions:
        reasons.append(f"Predicted from {entry.observed.provisions} observed provisions")
    else:
        reasons.append("Predicted from the provider's prior profile (no observations yet)")
    return reasons


def _confidence(ranked: list[tuple[float, ProviderEntry]], mode: str) -> str:
    best = ranked[0][1]
    observed = best.observed is not None and best.observed.provisions >= 3
    if mode == "pinned" or (observed and (len(ranked) == 1 or ranked[0][0] - ranked[1][0] > 0.05)):
        return "high"
    return "medium" if observed or len(ranked) == 1 else "low"


def route(
    entries: Sequence[ProviderEntry],
    requirements: dict[str, Any] | None,
    policy: dict[str, Any] | None,
    *,
    workload: str | None = None,
) -> RoutingReport:
    """The routing report for ``requirements`` and ``policy`` over ``entries``.

    Raises:
        InvalidRequest: ``pinned`` mode without ``pinned_provider``, or an unknown provider
            name in ``pinned_provider`` / ``allowed_providers`` (with a did-you-mean).
        NoProviderQualifies: nothing executable qualifies (409; the report is the context).
    """
    req, pol = requirements or {}, policy or {}
    mode = pol.get("mode") or "balanced"
    known = {e.name: e for e in entries}
    allowed = pol.get("allowed_providers")
    pinned = pol.get("pinned_provider")
    if mode == "pinned" and not pinned:
        raise InvalidRequest(
            'policy.mode "pinned" needs "pinned_provider", e.g. {"mode": "pinned", '
            '"pinned_provider": "local"}.'
        )
    for name in [*(allowed or []), *([pinned] if pinned else [])]:
        if name not in known:
            raise InvalidRequest(
                f"Unknown provider {name!r} in policy.{did_you_mean(name, known)} "
                f"Known: {', '.join(sorted(known))}.",
                context={"provider": name, "known": sorted(known)},
            )
    minutes = req.get("timeout_minutes") or DEFAULT_MINUTES
    candidates: list[dict[str, Any]] = []
    ranked: list[tuple[float, ProviderEntry]] = []
    for entry in entries:
        reason = None
        if allowed is not None and entry.name not in allowed:
            reason = "not in allowed_providers"
        elif mode == "pinned" and entry.name != pinned:
            reason = f"policy pins {pinned}"
        else:
            reason = unmet(entry, req, pol)
        if reason is None and not entry.executable:
            reason = f"not executable here (status {entry.status})"
        value = score(entry, mode, minutes)
        candidates.append(
            {
                "provider": entry.name,
                "status": entry.status,
                "qualifies": reason is None,
                "excluded_reason": reason,
                "score": round(value, 4),
                "predicted_startup_ms": round(entry.startup_ms, 2),
                "predicted_cost_usd": round(entry.cost_usd(minutes), 6),
                "reliability": round(entry.reliability, 4),
            }
        )
        if reason is None:
            ranked.append((value, entry))
    ranked.sort(key=lambda item: (-item[0], item[1].name))
    candidates.sort(key=lambda c: (not c["qualifies"], -c["score"], c["provider"]))
    report: RoutingReport = {
        "recommended_provider": None,
        "confidence": "none",
        "primary_reason": "No executable provider meets the requirements and policy",
        "secondary_reasons": [
            f"{c['provider']}: {c['excluded_reason']}" for c in candidates if not c["qualifies"]
        ],
        "fallback_order": [],
        "canary_run": False,
        "mode": mode,
        "candidates": candidates,
    }
    if not ranked:
        raise NoProviderQualifies(
            "No compute provider qualifies for these requirements and policy: "
            + "; ".join(report["secondary_reasons"])
            + ". Relax requirements/policy, or set the credentials of a provider listed in "
            "GET /v2/providers.",
            context={"routing": report},
        )
    best = ranked[0][1]
    report.update(
        recommended_provider=best.name,
        confidence=_confidence(ranked, mode),
        primary_reason=_primary_reason(best, mode, workload),
        secondary_reasons=_secondary(best, req, pol),
        fallback_order=[entry.name for _, entry in ranked[1:]],
    )
    return report
