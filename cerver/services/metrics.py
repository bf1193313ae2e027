"""Session metrics: the seed's fields, plus tokens and cost per harness and model.

Definitions (the seed names the fields; these are Cerver's meanings):

* ``cost_estimate_usd`` = LLM cost + compute cost (compute time × the provider's hourly price).
* ``llm_cost_usd`` sums the priced LLM calls. A call no price source knows is left out and
  counted in ``llm_calls_unpriced``; ``cost_note`` then says the costs are partial and names
  the fix. When no LLM call could be priced, ``llm_cost_usd`` and ``cost_estimate_usd`` are
  ``None`` (unknown), never ``0.0``.
* ``uptime_percent``: share of this session's runs that did not fail for infrastructure reasons
  (``None`` before the first run).
* ``engagement_score`` (0–100) grows with interactions (10 each), commands (2 each) and
  streams (2 each); ``engagement_label`` is ``idle`` at 0, ``warming`` below 25, ``engaged``
  below 70, else ``deep``.
"""

from __future__ import annotations

from typing import Any

from cerver.pricing import PRICES_FILE_ENV
from cerver.services.plugins import ComputePool
from cerver.store import SessionRecord, Store
from cerver.store.schema import utcnow

__all__ = ["MetricsService", "engagement", "unpriced_note"]


def engagement(interactions: int, execs: int, streams: int) -> tuple[int, str]:
    score = min(100, interactions * 10 + execs * 2 + streams * 2)
    if score == 0:
        return 0, "idle"
    if score < 25:
        return score, "warming"
    if score < 70:
        return score, "engaged"
    return score, "deep"


class MetricsService:
    def __init__(self, store: Store, computes: ComputePool) -> None:
        self._store = store
        self._computes = computes

    async def for_session(self, session: SessionRecord) -> dict[str, Any]:
        breakdown = await self._store.ledger.session_totals(session.id)
        runs_total, runs_failed = await self._store.runs.counts(session.id)
        profile = self._profile(session.provider)
        priced = [row["cost_usd"] for row in breakdown if row["cost_usd"] is not None]
        unpriced = sum(row["calls"] - row["priced_calls"] for row in breakdown)
        # Unknown, not 0.0, when calls were made and none of them could be priced.
        llm_cost = sum(priced) if priced or not unpriced else None
        compute_cost = (
            session.compute_seconds / 3600 * (profile.cost_per_hour_usd if profile else 0)
        )
        end = session.closed_at or utcnow()
        score, label = engagement(
            session.interaction_count, session.exec_count, session.stream_count
        )
        first_exec_ms = (
            (session.first_exec_at - session.created_at).total_seconds() * 1000
            if session.first_exec_at
            else None
        )
        return {
            "provision_time_ms": _round(session.provision_time_ms),
            "time_to_first_exec_ms": _round(first_exec_ms),
            "last_exec_latency_ms": _round(session.last_exec_ms),
            "average_exec_latency_ms": _round(
                session.exec_total_ms / session.exec_count if session.exec_count else None
            ),
            "average_stream_open_latency_ms": _round(
                session.stream_open_total_ms / session.stream_count
                if session.stream_count
                else None
            ),
            "total_exec_count": session.exec_count,
            "total_stream_count": session.stream_count,
            "interaction_count": session.interaction_count,
            "session_length_ms": _round((end - session.created_at).total_seconds() * 1000),
            "cost_estimate_usd": _round_usd(None if llm_cost is None else llm_cost + compute_cost),
            "uptime_percent": (
                round(100.0 * (runs_total - runs_failed) / runs_total, 2) if runs_total else None
            ),
            "predicted_startup_ms": profile.startup_ms if profile else None,
            "engagement_score": score,
            "engagement_label": label,
            "input_tokens": sum(row["input_tokens"] or 0 for row in breakdown),
            "output_tokens": sum(row["output_tokens"] or 0 for row in breakdown),
            "llm_cost_usd": _round_usd(llm_cost),
            "llm_calls_unpriced": unpriced,
            "cost_note": unpriced_note(unpriced, "llm_cost_usd and cost_estimate_usd"),
            "compute_cost_usd": round(compute_cost, 6),
            "by_harness": [
                {
                    "harness": row["harness"],
                    "model": row["model"],
                    "calls": row["calls"],
                    "input_tokens": row["input_tokens"] or 0,
                    "output_tokens": row["output_tokens"] or 0,
                    "cost_usd": row["cost_usd"],
                    "unpriced_calls": row["calls"] - row["priced_calls"],
                }
                for row in breakdown
                if row["kind"] == "llm"
            ],
        }

    def _profile(self, provider: str | None):
        if provider is None:
            return None
        return self._computes.provider(provider).profile


def unpriced_note(unpriced_calls: int, totals: str) -> str | None:
    """What a total that leaves out ``unpriced_calls`` must say (``None`` when it does not)."""
    if not unpriced_calls:
        return None
    return (
        f"{unpriced_calls} call(s) have no known price and are left out of {totals} (null when "
        f"nothing could be priced). Add the models' rates to the gateway's {PRICES_FILE_ENV}."
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _round_usd(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
