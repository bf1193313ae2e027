"""The console's pages: sign-in, sessions, a session, a fan-out, usage, providers.

Each page reads through the gateway's services, scoped to the signed-in account exactly as
the API is: another account's session or fan-out is the same not-found page as a missing one.
Actions are the page's scripts calling the JSON API (see the package docstring), so the only
writes here are signing in and out.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from cerver.api.deps import GatewayDep
from cerver.console import auth
from cerver.console.render import page
from cerver.errors import AuthenticationFailed, NotFound
from cerver.gateway import Gateway
from cerver.services.budgets import user_limit
from cerver.store import AccountRecord, SessionFilters
from cerver.store.ledger import USAGE_GROUPS

__all__ = ["router"]

router = APIRouter(prefix="/console", include_in_schema=False)

_FILTERS = ("user", "status", "harness", "model", "provider", "q")
_STATUSES = ("ready", "running", "paused", "closed", "failed")
_PAGE_SIZE = 50
_STATIC = {"console.css": "text/css", "console.js": "text/javascript"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


async def _signed_in(request: Request, gateway: Gateway) -> AccountRecord | None:
    """The account of the console cookie's key, or ``None`` (then the page asks to sign in)."""
    key = request.cookies.get(auth.COOKIE)
    if not key:
        return None
    try:
        return await gateway.auth.authenticate(f"Bearer {key}")
    except AuthenticationFailed:
        return None


def _to_sign_in() -> RedirectResponse:
    return RedirectResponse("/console/login", status_code=303)


def _html(response: HTMLResponse) -> HTMLResponse:
    response.headers.update(_SECURITY_HEADERS)
    return response


def _not_found(account: AccountRecord, what: str, error: NotFound) -> HTMLResponse:
    return _html(page("not_found.html", 404, account=account, what=what, detail=error.message))


# -- signing in --------------------------------------------------------------------------


@router.get("/login")
async def login_form() -> HTMLResponse:
    return _html(page("login.html", account=None, error=None))


@router.post("/login")
async def login(request: Request, gateway: GatewayDep) -> Response:
    """Check the key, then keep it in the console cookie (same-origin form posts only)."""
    if not auth.same_origin(request):
        return _html(page("login.html", 403, account=None, error="Cross-site sign-in refused."))
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("api_key") or [""])[0].strip()
    try:
        await gateway.auth.authenticate(f"Bearer {key}")
    except AuthenticationFailed as exc:
        return _html(page("login.html", 401, account=None, error=exc.message))
    response = RedirectResponse("/console", status_code=303)
    auth.set_cookie(response, request, key)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    if auth.same_origin(request):
        auth.clear_cookie(response)
    return response


# -- pages -------------------------------------------------------------------------------


@router.get("")
async def sessions_page(
    request: Request,
    gateway: GatewayDep,
    cursor: str | None = None,
    partial: str | None = None,
) -> Response:
    """The seed's table: every session of the account, newest first, filtered and paged."""
    account = await _signed_in(request, gateway)
    if account is None:
        return _to_sign_in()
    chosen = {k: v.strip() for k in _FILTERS if (v := request.query_params.get(k, "")).strip()}
    if chosen.get("status") not in (None, *_STATUSES):
        chosen.pop("status")
    records, next_cursor = await gateway.sessions.list(
        account.id, SessionFilters(**chosen), limit=_PAGE_SIZE, cursor=cursor
    )
    costs = await gateway.store.ledger.spent_by_session(account.id, [r.id for r in records])
    context = {
        "account": account,
        "sessions": records,
        "costs": costs,
        "filters": chosen,
        "statuses": _STATUSES,
        "cursor": cursor,
        "next_url": f"/console?{urlencode({**chosen, 'cursor': next_cursor})}"
        if next_cursor
        else None,
    }
    template = "_session_rows.html" if partial == "rows" else "sessions.html"
    return _html(page(template, **context))


@router.get("/sessions/{session_id}")
async def session_page(session_id: str, request: Request, gateway: GatewayDep) -> Response:
    """A session: transcript with provenance, metrics, live tail and actions."""
    account = await _signed_in(request, gateway)
    if account is None:
        return _to_sign_in()
    try:
        session = await gateway.sessions.get(account.id, session_id)
    except NotFound as exc:
        return _not_found(account, "Session", exc)
    transcript = await gateway.sessions.transcript(session.id)
    metrics = await gateway.metrics.for_session(session)
    return _html(
        page(
            "session.html",
            account=account,
            session=session,
            transcript=transcript,
            metrics=metrics,
            last_event_id=session.next_event_id - 1,
            harnesses=sorted(gateway.harnesses.registry.names()),
            computes=sorted(gateway.computes.registry.names()),
        )
    )


@router.get("/fanouts/{fanout_id}")
async def fanout_page(fanout_id: str, request: Request, gateway: GatewayDep) -> Response:
    """A fan-out: the variants side by side, the verdict, and a pick button per variant."""
    account = await _signed_in(request, gateway)
    if account is None:
        return _to_sign_in()
    try:
        fanout = await gateway.fanouts.get(account.id, fanout_id)
    except NotFound as exc:
        return _not_found(account, "Fan-out", exc)
    scores = {s["variant_id"]: s for s in (fanout.verdict or {}).get("scores", [])}
    return _html(page("fanout.html", account=account, fanout=fanout, scores=scores))


@router.get("/usage")
async def usage_page(
    request: Request,
    gateway: GatewayDep,
    group_by: Annotated[str, Query()] = "user",
) -> Response:
    """Spend and tokens by user, model, harness, provider or day, with end-user budgets."""
    account = await _signed_in(request, gateway)
    if account is None:
        return _to_sign_in()
    if group_by not in USAGE_GROUPS:
        group_by = "user"
    rows = await gateway.store.ledger.usage(account.id, group_by)  # type: ignore[arg-type]
    budgets = {}
    if group_by == "user":
        fresh = await gateway.store.accounts.get(account.id)  # the auth cache may be older
        budgets = {r["key"]: user_limit(fresh.budgets, r["key"]) for r in rows if r["key"]}
    peak = max((r["cost_usd"] or 0.0 for r in rows), default=0.0)
    return _html(
        page(
            "usage.html",
            account=account,
            rows=rows,
            group_by=group_by,
            groups=USAGE_GROUPS,
            budgets=budgets,
            peak=peak,
            total_cost=sum(r["cost_usd"] or 0.0 for r in rows),
            total_tokens=sum(r["input_tokens"] + r["output_tokens"] for r in rows),
        )
    )


@router.get("/providers")
async def providers_page(request: Request, gateway: GatewayDep) -> Response:
    """The compute catalog with status and learned profiles, and a stress-test form."""
    account = await _signed_in(request, gateway)
    if account is None:
        return _to_sign_in()
    entries = [entry.public() for entry in await gateway.placement.entries(account.id)]
    return _html(page("providers.html", account=account, providers=entries))


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The stylesheet and the script, read from the package (no build step)."""
    if name not in _STATIC:
        return Response(status_code=404)
    body = resources.files("cerver.console").joinpath("static", name).read_bytes()
    return Response(body, media_type=_STATIC[name], headers={"Cache-Control": "max-age=300"})
