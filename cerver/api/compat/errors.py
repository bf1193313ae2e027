"""Errors in the shape each compatibility surface's clients parse.

The official SDKs read the error body to raise their own exception classes with the
provider's message, so under ``/v1`` an error keeps Cerver's status code and message but is
rendered as OpenAI (``{"error": {"message", "type", "param", "code"}}``) or, under
``/v1/messages``, as Anthropic (``{"type": "error", "error": {"type", "message"}}``).
Everything else keeps Cerver's own shape (:mod:`cerver.api.errors`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["anthropic_error_body", "compat_error_body", "openai_error_body"]

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    429: "rate_limit_exceeded",
}


def compat_error_body(
    path: str, status: int, message: str, code: str, context: dict[str, Any]
) -> dict[str, Any] | None:
    """The body for an error on ``path``, or ``None`` outside the compatibility surfaces."""
    if path.startswith("/v1/messages"):
        return anthropic_error_body(status, message)
    if path.startswith("/v1/"):
        return openai_error_body(status, message, code, context)
    return None


def openai_error_body(
    status: int, message: str, code: str, context: dict[str, Any]
) -> dict[str, Any]:
    """OpenAI's error object; ``code`` is Cerver's stable code, ``param`` the field at fault."""
    kind = _OPENAI_TYPES.get(status)
    if kind is None:
        kind = "invalid_request_error" if status < 500 else "server_error"
    param = context.get("param")
    return {
        "error": {
            "message": message,
            "type": kind,
            "param": param if isinstance(param, str) else None,
            "code": code,
        }
    }


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error object (its ``type`` is derived from the status, as Anthropic does)."""
    kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}
