"""The one place where exceptions become HTTP responses.

Every error body is :class:`~cerver.failures.Failure`'s JSON form, ``{"detail": message,
"code": stable_code, "retryable": bool, "context": {...}}``, with the status the error's class
declares (the tree in ``cerver/errors.py``). Request validation keeps FastAPI's 422 shape
(``detail`` is the list of problems) and adds the same other keys.

Under ``/v1`` (the OpenAI- and Anthropic-compatible surfaces) the same failure is rendered in
the provider's own shape (:mod:`cerver.api.compat.errors`), so their SDKs raise their own
error classes; a malformed body there is a 400 naming the field, as the providers answer.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cerver.api.compat.errors import compat_error_body
from cerver.api.contract import allowed_methods
from cerver.errors import CerverError, ErrorCode, InvalidJSON, InvalidRequest, ValidationFailed
from cerver.failures import Failure

__all__ = ["failure_response", "install_error_handlers"]

log = logging.getLogger("cerver.api")

# Starlette's own refusals (no such route, wrong method) and the few FastAPI raises.
_HTTP_CODES = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
}


def failure_response(
    failure: Failure, status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(failure.to_json(), status_code=status, headers=headers)


def _respond(
    request: Request, failure: Failure, status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    """``failure_response``, or the compatibility surface's own shape under ``/v1``."""
    body = compat_error_body(
        request.url.path, status, failure.message, failure.code.value, dict(failure.context)
    )
    if body is None:
        return failure_response(failure, status, headers)
    return JSONResponse(body, status_code=status, headers=headers)


async def _cerver_error(request: Request, exc: CerverError) -> JSONResponse:
    if exc.status_code >= 500:
        log.warning("%s: %s", exc.code, exc.message)
    return _respond(request, Failure.from_error(exc), exc.status_code)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    json_errors = [e for e in errors if e.get("type") == "json_invalid"]
    if json_errors:
        ctx = json_errors[0].get("ctx", {})
        invalid = InvalidJSON(
            f"The request body is not valid JSON ({ctx.get('error', 'parse error')}). "
            "Send a JSON object with Content-Type: application/json.",
            context={"position": json_errors[0].get("loc", [None, None])[-1]},
        )
        return _respond(request, Failure.from_error(invalid), invalid.status_code)
    if request.url.path.startswith("/v1/"):
        first = errors[0]
        param = ".".join(str(part) for part in first.get("loc", ())[1:])
        message = f"{param}: {first.get('msg', 'invalid value')}" if param else first.get("msg")
        invalid = InvalidRequest(str(message), context={"param": param})
        return _respond(request, Failure.from_error(invalid), invalid.status_code)
    # FastAPI's shape: ``detail`` is the list of problems, not a sentence.
    errors = [_without_secrets(e) for e in errors]
    body = Failure(ErrorCode.VALIDATION_ERROR, "", context={"errors": len(errors)}).to_json()
    return JSONResponse({**body, "detail": _jsonable(errors)}, ValidationFailed.status_code)


# Body fields holding secrets: a validation error never echoes their value back.
_SECRET_FIELDS = frozenset({"api_key", "token", "secret"})


def _without_secrets(error: dict) -> dict:
    value = error.get("input")
    touches = any(str(part) in _SECRET_FIELDS for part in error.get("loc", ()))
    holds = isinstance(value, dict) and not _SECRET_FIELDS.isdisjoint(value)
    return {**error, "input": "<redacted>"} if touches or holds else error


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    fallback = ErrorCode.INVALID_REQUEST if exc.status_code < 500 else ErrorCode.INTERNAL_ERROR
    code = _HTTP_CODES.get(exc.status_code, fallback)
    headers = exc.headers
    if exc.status_code == 405:  # RFC 9110: name every method the path answers
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return _respond(request, Failure(code, str(exc.detail)), exc.status_code, headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return failure_response(Failure.from_exception(exc), 500)


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
