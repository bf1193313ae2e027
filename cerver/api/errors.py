"""The one place where exceptions become HTTP responses.

Every error body is ``{"detail": message, "code": stable_code, "context": {...}}``; request
validation keeps FastAPI's 422 shape (``detail`` is the list of problems) and adds ``code``.
Under ``/v1`` (the OpenAI- and Anthropic-compatible surfaces) the same error is rendered in
the provider's own shape (:mod:`cerver.api.compat.errors`), so their SDKs raise their own
error classes.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cerver.api.compat.errors import compat_error_body
from cerver.errors import CerverError

__all__ = ["install_error_handlers"]

log = logging.getLogger("cerver.api")

_HTTP_CODES = {401: "unauthenticated", 404: "not_found", 405: "method_not_allowed"}


def error_response(
    status: int, detail: object, code: str, context: dict | None = None
) -> JSONResponse:
    return JSONResponse(
        {"detail": detail, "code": code, "context": context or {}}, status_code=status
    )


def _respond(
    request: Request, status: int, detail: str, code: str, context: dict | None = None
) -> JSONResponse:
    """``error_response``, or the compatibility surface's own shape under ``/v1``."""
    body = compat_error_body(request.url.path, status, detail, code, context or {})
    if body is None:
        return error_response(status, detail, code, context)
    return JSONResponse(body, status_code=status)


async def _cerver_error(request: Request, exc: CerverError) -> JSONResponse:
    if exc.status_code >= 500:
        log.warning("%s: %s", exc.code, exc.message)
    return _respond(request, exc.status_code, exc.message, exc.code, exc.context)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    json_errors = [e for e in errors if e.get("type") == "json_invalid"]
    if json_errors:
        ctx = json_errors[0].get("ctx", {})
        return _respond(
            request,
            400,
            f"The request body is not valid JSON ({ctx.get('error', 'parse error')}). "
            "Send a JSON object with Content-Type: application/json.",
            "invalid_json",
            {"position": json_errors[0].get("loc", [None, None])[-1]},
        )
    if request.url.path.startswith("/v1/"):
        # OpenAI and Anthropic answer a malformed body with a 400 naming the field.
        first = errors[0]
        param = ".".join(str(part) for part in first.get("loc", ())[1:])
        message = f"{param}: {first.get('msg', 'invalid value')}" if param else first.get("msg")
        return _respond(request, 400, str(message), "validation_error", {"param": param})
    return error_response(422, _jsonable(errors), "validation_error", {"errors": len(errors)})


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return _respond(request, exc.status_code, exc.detail, code)


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
