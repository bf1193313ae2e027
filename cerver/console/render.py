"""The console's Jinja2 environment: templates shipped in the package, autoescaped, with the
few formatting filters the pages share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from cerver.store.ledger import SessionCost

__all__ = ["page"]


def _usd(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def _session_cost(cost: SessionCost | None) -> str:
    """A session's spend: unknown when no call was priced, a lower bound when some were not."""
    if cost is None:
        return "$0"
    if cost.unpriced_calls and not cost.usd:
        return "unknown"
    shown = _usd(cost.usd)
    return f"≥ {shown}" if cost.unpriced_calls else shown


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _ago(value: datetime | None) -> str:
    if value is None:
        return "—"
    seconds = (datetime.now(UTC) - value).total_seconds()
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now" if seconds < 5 else f"{int(seconds)} s ago"


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


_env = Environment(
    loader=PackageLoader("cerver.console", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    usd=_usd,
    session_cost=_session_cost,
    ms=_ms,
    count=_count,
    ago=_ago,
    when=_when,
    tojson_pretty=_json,
)


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with ``context`` into an HTML response."""
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code)
