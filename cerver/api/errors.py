"""The one place where exceptions become HTTP responses.

Every error body is ``{"detail": message, "code": stable_code, "context": {...}}``; request
validation keeps FastAPI's 422 shape (``detail`` is the list of problems) and adds ``code``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cerver.api.contract import allowed_methods
from cerver.errors import CerverError

__all__ = ["install_error_handlers"]

log = logging.getLogger("cerver.api")

_HTTP_CODES = {401: "unauthenticated", 404: "not_found", 405: "method_not_allowed"}


def error_response(
    status: int,
    detail: object,
    code: str,
    context: dict | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"detail": detail, "code": code, "context": context or {}},
        status_code=status,
        headers=headers,
    )


async def _cerver_error(_: Request, exc: CerverError) -> JSONResponse:
    if exc.status_code >= 500:
        log.warning("%s: %s", exc.code, exc.message)
    return error_response(exc.status_code, exc.message, exc.code, exc.context)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    json_errors = [e for e in errors if e.get("type") == "json_invalid"]
    if json_errors:
        ctx = json_errors[0].get("ctx", {})
        return error_response(
            400,
            f"The request body is not valid JSON ({ctx.get('error', 'parse error')}). "
            "Send a JSON object with Content-Type: application/json.",
            "invalid_json",
            {"position": json_errors[0].get("loc", [None, None])[-1]},
        )
    return error_response(422, _jsonable(errors), "validation_error", {"errors": len(errors)})


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = exc.headers
    if exc.status_code == 405:  # RFC 9110: name every method the path answers
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return error_response(exc.status_code, exc.detail, code, headers=headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return error_response(
        500, f"Internal error ({type(exc).__name__}); see the gateway log.", "internal_error"
    )


def _jsonable(errors: list[dict]) -> list[dict]:
    # Pydantic puts exception objects in ctx; keep only what serialises.
    cleaned = []
    for error in errors:
        error = dict(error)
        if isinstance(error.get("input"), bytes):  # a body sent without a JSON content type
            error["input"] = error["input"].decode("utf-8", "replace")
        if "ctx" in error:
            error["ctx"] = {k: str(v) for k, v in error["ctx"].items()}
        error.pop("url", None)
        cleaned.append(error)
    return cleaned


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CerverError, _cerver_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
