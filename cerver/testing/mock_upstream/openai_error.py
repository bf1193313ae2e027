"""The OpenAI error shape, shared by the Responses and Chat Completions dialects:
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

from typing import Any

from cerver.testing.mock_upstream.script import UpstreamFailure

__all__ = ["render_error"]

_BY_STATUS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def render_error(failure: UpstreamFailure) -> dict[str, Any]:
    """The error body for ``failure``; ``type`` and ``code`` default by status."""
    fallback = ("invalid_request_error", None) if failure.status < 500 else ("server_error", None)
    kind, code = _BY_STATUS.get(failure.status, fallback)
    return {
        "error": {
            "message": failure.message,
            "type": failure.type or kind,
            "param": failure.param,
            "code": failure.code or code,
        }
    }
