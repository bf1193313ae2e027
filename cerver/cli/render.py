"""Rich renderings of sessions for the CLI and the demo."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["render_metrics", "render_session", "render_transcript"]


def _describe(entry: dict[str, Any]) -> str:
    parts = entry.get("parts") or []
    part = parts[0] if parts else {}
    if entry["kind"] == "tool_call":
        args = part.get("arguments", {})
        shown = args.get("command") or args.get("path") or args
        return f"{part.get('name')}({shown})"
    if entry["kind"] == "tool_result":
        prefix = "ERROR " if part.get("is_error") else ""
        return prefix + (part.get("output") or "").strip()
    return entry.get("content") or ""


def render_transcript(console: Console, entries: list[dict[str, Any]]) -> None:
    table = Table(title="Transcript", show_lines=False, expand=True)
    table.add_column("seq", justify="right")
    table.add_column("role")
    table.add_column("kind")
    table.add_column("content", ratio=3, overflow="fold")
    table.add_column("harness · model", overflow="fold")
    table.add_column("tokens in/out", justify="right")
    table.add_column("ms", justify="right")
    for entry in entries:
        usage = entry.get("usage") or {}
        tokens = f"{usage.get('input_tokens', 0)}/{usage.get('output_tokens', 0)}" if usage else ""
        provenance = ""
        if entry.get("harness"):
            provenance = f"{entry['harness']} · {entry.get('model') or ''}"
        latency = entry.get("latency_ms")
        table.add_row(
            str(entry["seq"]),
            entry["role"],
            entry["kind"],
            Text(_describe(entry)[:400]),
            Text(provenance),
            tokens,
            f"{latency:.0f}" if latency is not None else "",
        )
    console.print(table)


# Costs are ``None`` when no call could be priced: shown as unknown, never as 0.
_COSTS = {"cost_estimate_usd", "llm_cost_usd"}


def _cost(value: float | None, unpriced_calls: int) -> str:
    if value is None:
        return "unknown" if unpriced_calls else "—"
    shown = f"${value:.6f}"
    return f"{shown} + {unpriced_calls} unpriced call(s)" if unpriced_calls else shown


def render_metrics(console: Console, metrics: dict[str, Any]) -> None:
    table = Table(title="Metrics", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right", overflow="fold")
    unpriced = metrics.get("llm_calls_unpriced") or 0
    for name, value in metrics.items():
        if name == "by_harness":
            for row in value:
                table.add_row(
                    f"  {row['harness']} · {row['model']}",
                    f"{row['calls']} calls, {row['input_tokens']}/{row['output_tokens']} tokens, "
                    + _cost(row["cost_usd"], row["unpriced_calls"]),
                )
            continue
        if name == "cost_note":
            continue  # printed under the table, where it has room
        if name in _COSTS:
            table.add_row(name, _cost(value, unpriced))
        else:
            table.add_row(name, "—" if value is None else str(value))
    console.print(table)
    if metrics.get("cost_note"):
        console.print(Text(metrics["cost_note"], style="yellow"))


def render_session(console: Console, session: dict[str, Any]) -> None:
    console.print(
        f"[bold]{session['session_id']}[/] user={session['user']} status={session['status']} "
        f"harness={session['harness']} model={session['model']} "
        f"compute={session['provider'] or 'none'}"
    )
    if session.get("transcript") is not None:
        render_transcript(console, session["transcript"])
    if session.get("metrics"):
        render_metrics(console, session["metrics"])
