"""What each route can answer besides success: the OpenAPI responses and a 405's ``Allow``.

The statuses come from the error tree (:mod:`cerver.errors`), in two layers:

* a route declares the errors of its own work, as classes:
  ``@router.post(..., responses=errors(BudgetExceeded, SessionBusy))``;
* :func:`document_errors` adds, to every operation of the OpenAPI document, what any route of
  its shape can answer before its handler runs: 400 for a NUL in the URL (and, with a body,
  for invalid JSON or a value the store cannot hold), 401 when it needs an API key, 404 when
  it names an object by id, 413 with a body, 422 when it takes parameters or a body.

So a client (and schemathesis) can rely on the document: a status it does not list is a bug.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, Field
from starlette.routing import Match

from cerver.errors import (
    AuthenticationFailed,
    BudgetExceeded,
    CerverError,
    ComputeError,
    ComputeTimeout,
    Conflict,
    HarnessError,
    InvalidRequest,
    NotConfigured,
    NotFound,
    PayloadTooLarge,
    SessionBusy,
    SessionClosed,
    UpstreamError,
)

__all__ = [
    "PLACEMENT",
    "SANDBOX",
    "SESSION_WRITE",
    "TURN",
    "ErrorBody",
    "allowed_methods",
    "document_errors",
    "errors",
]

# What groups of routes raise, beyond what their shape implies (see document_errors).
#: Changing a session: it may be closed, paused (``conflict``), or busy with a turn.
SESSION_WRITE: tuple[type[CerverError], ...] = (Conflict, SessionClosed, SessionBusy)
#: Placing a session on a compute: nothing may qualify (409), the provider may fail or lack
#: credentials.
PLACEMENT: tuple[type[CerverError], ...] = (Conflict, ComputeError, ComputeTimeout, NotConfigured)
#: Work in a session's sandbox.
SANDBOX: tuple[type[CerverError], ...] = (*SESSION_WRITE, *PLACEMENT[1:])
#: A model turn (or a fan-out of them): budgets, the harness's provider, the upstream.
TURN: tuple[type[CerverError], ...] = (
    *SESSION_WRITE,
    BudgetExceeded,
    NotConfigured,
    HarnessError,
    UpstreamError,
    ComputeTimeout,
)

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class ErrorBody(BaseModel):
    """Every error answer: a message for people, a stable code for programs, and the values
    involved. ``detail`` is FastAPI's list of problems for a 422 validation error."""

    detail: str | list[dict[str, Any]] = Field(description="What went wrong and how to fix it.")
    code: str = Field(description="A stable machine-readable code, e.g. 'session_busy'.")
    context: dict[str, Any] = Field(description="The values involved (ids, limits, fields).")


def errors(*classes: type[CerverError]) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for the errors a route raises, one entry per HTTP status."""
    by_status: dict[int, list[type[CerverError]]] = {}
    for cls in dict.fromkeys(classes):
        by_status.setdefault(cls.status_code, []).append(cls)
    return {
        status: {"model": ErrorBody, "description": _describe(found)}
        for status, found in sorted(by_status.items())
    }


def _describe(classes: Iterable[type[CerverError]]) -> str:
    return "; ".join(
        f"`{cls.code}`" + (f": {_first_line(cls.__doc__)}" if cls.__doc__ else "")
        for cls in classes
    )


def _first_line(doc: str) -> str:
    return doc.strip().splitlines()[0].rstrip(".")


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` list, on every operation, the errors its shape implies."""
    build = app.openapi  # FastAPI's: builds the document once, then returns it cached

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas.setdefault(
                "ErrorBody",
                ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"),
            )
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    _add_shape_errors(operation)
        return build()

    app.openapi = openapi  # type: ignore[method-assign]


def _add_shape_errors(operation: dict[str, Any]) -> None:
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    implied = [(InvalidRequest.status_code, "`invalid_request`: a NUL character in the URL")]
    if has_body:
        implied.append(
            (
                InvalidRequest.status_code,
                "`invalid_json`: the body is not JSON; `invalid_request`: it holds a value the "
                "store cannot hold (an integer beyond 64 bits, NaN, a NUL character)",
            )
        )
        implied.append((PayloadTooLarge.status_code, "`payload_too_large`: over the body limit"))
    if operation.get("security"):
        implied.append((AuthenticationFailed.status_code, "`unauthenticated`: no or unknown key"))
    if any(p.get("in") == "path" for p in parameters):
        implied.append((NotFound.status_code, "`not_found`: no such object in this account"))
    if parameters or has_body:
        implied.append((422, "`validation_error`: a parameter or the body breaks the schema"))
    responses = operation.setdefault("responses", {})
    for status, description in implied:
        entry = responses.setdefault(str(status), {"description": description})
        if entry.get("description") == "Validation Error" or "content" not in entry:
            entry["content"] = {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
            }
        if description not in entry["description"]:
            entry["description"] = f"{entry['description']}; {description}"


def allowed_methods(request: Request) -> list[str]:
    """Every method the request's path answers, as the OpenAPI document lists them.

    Starlette's own 405 names only the first route whose path matched, and a path is often
    served by several (``GET`` and ``DELETE /v2/sessions/{id}``). A literal segment wins over
    a parameter (``/v2/computes/register`` is not ``/v2/computes/{compute_id}``), as it does
    for the reader of the document. Paths the document does not list fall back to routing.
    """
    path = request.scope["path"]
    matching = [
        (template, operations)
        for template, operations in request.app.openapi().get("paths", {}).items()
        if _template_pattern(template).fullmatch(path)
    ]
    if matching:
        best = max(_literal_segments(template) for template, _ in matching)
        found = {
            method.upper()
            for template, operations in matching
            if _literal_segments(template) == best
            for method in operations
        }
        return [method for method in _METHODS if method in found]
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


@functools.lru_cache(maxsize=256)
def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts if p))


def _literal_segments(template: str) -> int:
    return sum(1 for segment in template.split("/") if segment and "{" not in segment)
