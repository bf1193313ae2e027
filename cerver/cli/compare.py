"""``cerver compare``: a fan-out shown as a live table while its variants run.

:class:`CompareBoard` folds the fan-out's server-sent events into rows and renders them as a
rich table, so the same code serves the live view and its tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

__all__ = ["CompareBoard", "parse_variant"]


def parse_variant(text: str) -> dict[str, Any]:
    """``HARNESS[:MODEL][@COMPUTE]`` → a fan-out variant (``anthropic:claude-sonnet-4-6``,
    ``openai:gpt-5@local``, ``claude-code:sonnet``). ``@none`` means no compute."""
    target, _, compute = text.partition("@")
    harness, _, model = target.partition(":")
    variant: dict[str, Any] = {"harness": harness}
    if model:
        variant["model"] = model
    if compute:
        variant["compute"] = None if compute == "none" else {"provider": compute}
    return variant


@dataclass
class _Row:
    label: str
    status: str = "pending"
    latency_ms: float | None = None
    tokens: int | None = None
    cost: float | None = None
    score: float | None = None
    chars: int = 0
    error: str | None = None


@dataclass
class CompareBoard:
    """The state of one comparison, updated with :meth:`apply` for each event."""

    rows: dict[str, _Row] = field(default_factory=dict)
    verdict: dict[str, Any] | None = None
    final: dict[str, Any] | None = None

    def apply(self, event: str, data: Any) -> None:
        if event == "fanout.started":
            for v in data["variants"]:
                self.rows[v["variant_id"]] = _Row(f"{v['harness']}:{v['model']}")
        elif event == "variant.started":
            self.rows[data["variant_id"]].status = "running"
        elif event == "variant.delta":
            self.rows[data["variant_id"]].chars += len(data["text"])
        elif event == "variant.completed":
            row = self.rows[data["variant_id"]]
            usage = data["usage"]
            row.status = data["status"]
            row.latency_ms = data["latency_ms"]
            row.tokens = usage["input_tokens"] + usage["output_tokens"]
            row.cost = usage.get("cost_usd")
            row.error = (data.get("error") or {}).get("detail")
        elif event == "verdict" and data:
            self.verdict = data
            for score in data["scores"]:
                self.rows[score["variant_id"]].score = score["score"]
        elif event == "fanout.completed":
            self.final = data

    def table(self) -> Table:
        table = Table("variant", "status", "latency ms", "tokens", "cost $", "score", "note")
        winner = (self.final or {}).get("winner_variant_id") or (self.verdict or {}).get(
            "winner_variant_id"
        )
        for variant_id, row in self.rows.items():
            status = row.status if row.status != "running" else f"running ({row.chars} chars)"
            table.add_row(
                f"[bold green]{row.label} ★[/]" if variant_id == winner else row.label,
                status,
                _fmt(row.latency_ms, "{:.0f}"),
                _fmt(row.tokens, "{}"),
                _fmt(row.cost, "{:.5f}"),
                _fmt(row.score, "{:.2f}"),
                (row.error or "")[:60],
            )
        return table

    def summary(self) -> str:
        """The outcome in one line: the winner (or why there is none) and the total cost."""
        if self.final is None:
            return "The fan-out did not complete."
        verdict = self.final.get("verdict") or {}
        total = self.final["cost"]["total"]
        cost = f"${total['cost_usd']:.5f}" if total.get("cost_usd") is not None else "cost unknown"
        spend = f"{total['input_tokens'] + total['output_tokens']} tokens, {cost}"
        winner = self.final.get("winner_variant_id")
        if winner:
            label = self.rows[winner].label if winner in self.rows else winner
            return f"Winner: {label} (judge: {verdict.get('judge')}) · {spend}"
        reason = verdict.get("reason") or "no judge: pick one with POST /v2/fanouts/{id}/pick"
        for variant_id, row in self.rows.items():
            reason = reason.replace(variant_id, row.label)
        return f"No winner: {reason} · {spend}"


def _fmt(value: float | int | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)
