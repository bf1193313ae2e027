"""Signing in to the console: an API key in an HttpOnly, SameSite=Strict cookie.

The cookie holds the key itself (the gateway stores keys hashed and cannot reissue one), is
never readable by scripts, and is sent only to this gateway, only under ``/`` of the same site.
Because the API also accepts it (:func:`cookie_authorization`), every state-changing request
authenticated by the cookie must come from the gateway's own pages: its ``Origin`` (or, when a
browser omits it, its ``Referer``) must be this gateway. Requests with an ``Authorization``
header never reach this check: a bearer key is not ambient, so it cannot be forged cross-site.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from cerver.errors import PermissionDenied

__all__ = [
    "COOKIE",
    "clear_cookie",
    "cookie_authorization",
    "same_origin",
    "set_cookie",
]

COOKIE = "cerver_console"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_AGE_S = 12 * 3600


def same_origin(request: Request) -> bool:
    """Whether the request was sent by a page of this gateway (``Origin``, else ``Referer``)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    return (parts.scheme, parts.netloc) == (request.url.scheme, request.url.netloc)


def cookie_authorization(request: Request) -> str | None:
    """``Bearer <key>`` from the console cookie, or ``None`` when there is no cookie.

    Raises:
        PermissionDenied: an unsafe method (POST, PUT, DELETE…) from another origin.
    """
    key = request.cookies.get(COOKIE)
    if not key:
        return None
    if request.method not in _SAFE_METHODS and not same_origin(request):
        raise PermissionDenied(
            "Cross-site request refused: a request signed in with the console cookie must come "
            "from the console's own pages. From a program, send Authorization: Bearer <key>.",
            context={"origin": request.headers.get("origin")},
        )
    return f"Bearer {key}"


def set_cookie(response: Response, request: Request, key: str) -> None:
    response.set_cookie(
        COOKIE,
        key,
        max_age=_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
