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
from pydantic import Field
from starlette.routing import Match

from cerver.api.schemas.errors import FailurePublic
from cerver.errors import (
    AuthenticationFailed,
    BudgetExceeded,
    CerverError,
    ComputeError,
    ComputeTimeout,
    Conflict,
    HarnessError,
    HarnessTimeout,
    InvalidRequest,
    JudgeError,
    NoOutput,
    NoProviderQualifies,
    NotConfigured,
    NotFound,
    PayloadTooLarge,
    RunCancelled,
    RunInterrupted,
    SandboxGone,
    SessionBusy,
    SessionClosed,
    StepLimitReached,
    UpstreamError,
    ValidationFailed,
    VariantTimeout,
)

__all__ = [
    "FANOUT",
    "PLACEMENT",
    "SANDBOX",
    "SESSION_WRITE",
    "SSE",
    "TURN",
    "ValidationFailurePublic",
    "allowed_methods",
    "document_errors",
    "errors",
]

# What groups of routes raise, beyond what their shape implies (see document_errors).
#: Changing a session: it may be closed, paused (``conflict``), or busy with a turn.
SESSION_WRITE: tuple[type[CerverError], ...] = (Conflict, SessionClosed, SessionBusy)
#: Placing a session on a compute: nothing may qualify, the provider may fail or lack
#: credentials.
PLACEMENT: tuple[type[CerverError], ...] = (
    NoProviderQualifies,
    ComputeError,
    ComputeTimeout,
    NotConfigured,
)
#: Work in a session's sandbox.
SANDBOX: tuple[type[CerverError], ...] = (
    *SESSION_WRITE,
    ComputeError,
    ComputeTimeout,
    SandboxGone,
    NotConfigured,
)
#: A model turn: budgets, the harness's provider, the upstream, the sandbox its tools use; a
#: failed turn answers with its failure's class.
TURN: tuple[type[CerverError], ...] = (
    *SESSION_WRITE,
    RunCancelled,
    BudgetExceeded,
    NotConfigured,
    RunInterrupted,
    HarnessError,
    UpstreamError,
    StepLimitReached,
    NoOutput,
    HarnessTimeout,
    *SANDBOX[3:],
)
#: A fan-out: N turns (in new sessions, on computes it names), then a judge.
FANOUT: tuple[type[CerverError], ...] = (
    *TURN,
    *PLACEMENT,
    NotFound,
    JudgeError,
    VariantTimeout,
)
#: A route that answers a stream of server-sent events.
SSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# The OpenAI- and Anthropic-compatible surface (cerver.api.compat) keeps their error shapes.
_COMPAT_PREFIX = "/v1/"


class ValidationFailurePublic(FailurePublic):
    """A 422: FastAPI's list of problems as ``detail``, with the other keys of every error."""

    detail: list[dict[str, Any]] = Field(  # type: ignore[assignment]
        description="Each problem: its location (loc), message (msg) and type."
    )


def errors(*classes: type[CerverError]) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for the errors a route raises, one entry per HTTP status."""
    by_status: dict[int, list[type[CerverError]]] = {}
    for cls in dict.fromkeys(classes):
        by_status.setdefault(cls.status_code, []).append(cls)
    return {
        status: {"model": FailurePublic, "description": _describe(found)}
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
            for model in (FailurePublic, ValidationFailurePublic):
                found = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in found.pop("$defs", {}).items():
                    schemas.setdefault(name, definition)
                schemas.setdefault(model.__name__, found)
            for path, item in schema.get("paths", {}).items():
                for operation in item.values():
                    _add_shape_errors(operation, compat=path.startswith(_COMPAT_PREFIX))
        return build()

    app.openapi = openapi  # type: ignore[method-assign]


def _add_shape_errors(operation: dict[str, Any], *, compat: bool) -> None:
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
    if compat:  # an unknown model or object id, answered in the provider's own shape
        implied.append((NotFound.status_code, "`not_found`: no such model or object"))
    if parameters or has_body:
        implied.append(
            (
                ValidationFailed.status_code,
                "`validation_error`: a parameter or the body breaks the schema",
            )
        )
    responses = operation.setdefault("responses", {})
    for status, description in implied:
        entry = responses.setdefault(str(status), {"description": description})
        if entry.get("description") == "Validation Error" or "content" not in entry:
            entry["content"] = {"application/json": {"schema": _error_schema(status, compat)}}
        if description not in entry["description"]:
            entry["description"] = f"{entry['description']}; {description}"


def _error_schema(status: int, compat: bool) -> dict[str, Any]:
    if compat:  # the OpenAI- and Anthropic-compatible surface answers in their error shapes
        return {"type": "object", "description": "The emulated provider's error object."}
    model = ValidationFailurePublic if status == ValidationFailed.status_code else FailurePublic
    return {"$ref": f"#/components/schemas/{model.__name__}"}


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
