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

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, Field
from starlette.routing import Match

from cerver.errors import (
    AuthenticationFailed,
    CerverError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
)

__all__ = ["ErrorBody", "allowed_methods", "document_errors", "errors"]

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
    for cls in classes:
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
    """Every method the request's path answers (Starlette's own 405 names only the first
    route that matched the path, and a path is often served by several)."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed
