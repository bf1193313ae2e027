"""The one exception hierarchy of Cerver.

Every error a user can meet carries a stable ``code``, a ``context`` dict naming the bad
values, and ``retryable``. The API layer maps each class to one HTTP status in one place
(``cerver.api.errors``); plug-ins translate their vendors' exceptions at their boundary.

    CerverError
    ├── UserError                      (4xx: the request must change)
    │   ├── InvalidRequest             400 invalid_request
    │   ├── AuthenticationFailed       401 unauthenticated
    │   ├── PermissionDenied           403 forbidden
    │   ├── NotFound                   404 not_found
    │   ├── Conflict                   409 conflict
    │   │   ├── SessionBusy            409 session_busy
    │   │   └── SessionClosed          409 session_closed
    │   ├── BudgetExceeded             402 budget_exceeded
    │   ├── PayloadTooLarge            413 payload_too_large
    │   └── UnknownPlugin              400 unknown_plugin
    ├── MissingDependency              500 missing_dependency (an optional extra is not installed)
    ├── NotConfigured                  503 not_configured (e.g. no key for a harness's provider)
    ├── ShuttingDown                   503 shutting_down (the process is draining; retry elsewhere)
    └── RunFailure                     (5xx: a backend failed)
        ├── HarnessError               502 harness_error
        │   └── UpstreamError          502 upstream_error
        ├── ComputeError               502 compute_error
        │   └── ComputeTimeout         504 compute_timeout
        └── JudgeError                 502 judge_error
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "AuthenticationFailed",
    "BudgetExceeded",
    "CerverError",
    "ComputeError",
    "ComputeTimeout",
    "Conflict",
    "HarnessError",
    "InvalidRequest",
    "JudgeError",
    "MissingDependency",
    "NotConfigured",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RunFailure",
    "SessionBusy",
    "SessionClosed",
    "ShuttingDown",
    "UnknownPlugin",
    "UpstreamError",
    "UserError",
    "did_you_mean",
    "error_class",
]


class CerverError(Exception):
    """Base class: a message for people, a stable code for programs."""

    code: str = "internal_error"
    status_code: int = 500
    retryable: bool = False

    def __init__(
        self, message: str, *, context: dict[str, Any] | None = None, retryable: bool | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.context = context or {}
        if retryable is not None:
            self.retryable = retryable

    def to_dict(self) -> dict[str, Any]:
        return {"detail": self.message, "code": self.code, "context": self.context}


class UserError(CerverError):
    """The request cannot succeed as sent; retrying it unchanged will fail again."""

    code = "invalid_request"
    status_code = 400


class InvalidRequest(UserError):
    code = "invalid_request"
    status_code = 400


class AuthenticationFailed(UserError):
    code = "unauthenticated"
    status_code = 401


class PermissionDenied(UserError):
    code = "forbidden"
    status_code = 403


class NotFound(UserError):
    code = "not_found"
    status_code = 404


class Conflict(UserError):
    code = "conflict"
    status_code = 409


class SessionBusy(Conflict):
    code = "session_busy"
    retryable = True


class SessionClosed(Conflict):
    code = "session_closed"


class BudgetExceeded(UserError):
    code = "budget_exceeded"
    status_code = 402


class PayloadTooLarge(UserError):
    code = "payload_too_large"
    status_code = 413


class UnknownPlugin(UserError):
    code = "unknown_plugin"
    status_code = 400


class MissingDependency(CerverError):
    """An optional SDK is not installed; the message names the extra to install."""

    code = "missing_dependency"
    status_code = 500


class NotConfigured(CerverError):
    """The gateway lacks configuration a request needs; the message names the setting."""

    code = "not_configured"
    status_code = 503


class ShuttingDown(CerverError):
    """This gateway process is shutting down and starts no new work; another replica (or
    this one, restarted) will take the request."""

    code = "shutting_down"
    status_code = 503
    retryable = True


class RunFailure(CerverError):
    """A backend (model upstream, sandbox, judge) failed while doing the work."""

    code = "run_failed"
    status_code = 502


class HarnessError(RunFailure):
    code = "harness_error"


class UpstreamError(HarnessError):
    """The model provider answered with an error or could not be reached."""

    code = "upstream_error"


class ComputeError(RunFailure):
    code = "compute_error"


class ComputeTimeout(ComputeError):
    code = "compute_timeout"
    status_code = 504


class JudgeError(RunFailure):
    code = "judge_error"


def error_class(code: str, default: type[CerverError]) -> type[CerverError]:
    """The class whose stable ``code`` is ``code`` (the most specific one), else ``default``."""
    found: type[CerverError] | None = None
    pending: list[type[CerverError]] = [CerverError]
    while pending:
        cls = pending.pop()
        if cls.code == code and (found is None or issubclass(cls, found)):
            found = cls
        pending.extend(cls.__subclasses__())
    return found or default


def did_you_mean(value: str, known: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest known name, or ``""``."""
    matches = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    return f" Did you mean '{matches[0]}'?" if matches else ""
