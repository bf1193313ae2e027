"""The one failure vocabulary of Cerver: the exception tree and its codes.

Every error a user can meet carries a stable ``code`` (a member of :class:`ErrorCode`), a
``context`` dict naming the bad values, and ``retryable``. Raised, it is a
:class:`CerverError`; in flight (a harness's ``Error`` event, a turn's result, a fan-out
variant's outcome, an SSE ``error`` event, an HTTP error body) it is a
:class:`cerver.failures.Failure`, the same four fields as a frozen value. The two convert both
ways through one table keyed by code (:data:`ERROR_CLASSES`), so a failure keeps its class
from the point it happens to the HTTP body. The API maps each class to its HTTP status in one
handler (``cerver.api.errors``); plug-ins translate their vendors' exceptions at their
boundary, one table per SDK (``compute.base.VendorErrors``, ``harnesses._loop``).

    CerverError                        500 internal_error (a bug: see the gateway log)
    ├── UserError                      (4xx: the request must change)
    │   ├── InvalidRequest             400 invalid_request
    │   │   ├── InvalidJSON            400 invalid_json
    │   │   └── ValidationFailed       422 validation_error (FastAPI's 422 body shape)
    │   ├── AuthenticationFailed       401 unauthenticated
    │   ├── PermissionDenied           403 forbidden
    │   ├── NotFound                   404 not_found
    │   │   └── UnknownModel           404 model_not_found (the /v1 surfaces' ``model``)
    │   ├── MethodNotAllowed           405 method_not_allowed
    │   ├── Conflict                   409 conflict
    │   │   ├── SessionBusy            409 session_busy (retryable)
    │   │   ├── SessionClosed          409 session_closed
    │   │   ├── NoProviderQualifies    409 no_provider_qualifies (context: the routing report)
    │   │   ├── IdempotencyKeyInUse    409 idempotency_key_in_use (retryable)
    │   │   └── IdempotentStream       409 idempotent_stream
    │   ├── IdempotencyKeyReused       422 idempotency_key_reused
    │   ├── BudgetExceeded             402 budget_exceeded
    │   ├── PayloadTooLarge            413 payload_too_large
    │   └── UnknownPlugin              400 unknown_plugin
    ├── MissingDependency              500 missing_dependency (an optional extra is not installed)
    ├── NotConfigured                  503 not_configured (e.g. no key for a harness's provider)
    ├── RunCancelled                   409 cancelled (the run was cancelled before it finished)
    └── RunFailure                     502 run_failed (a backend failed)
        ├── HarnessError               502 harness_error
        │   ├── UpstreamError          502 upstream_error (the model provider failed)
        │   ├── HarnessTimeout         504 timeout (a CLI harness outlived its time limit)
        │   ├── StepLimitReached       502 max_steps (still calling tools at max_steps)
        │   └── NoOutput               502 no_output (the turn wrote no assistant text)
        ├── ComputeError               502 compute_error
        │   ├── ComputeTimeout         504 compute_timeout
        │   └── SandboxGone            410 sandbox_gone
        ├── JudgeError                 502 judge_error
        ├── VariantTimeout             504 variant_timeout (a fan-out variant ran out of time)
        └── RunInterrupted             503 interrupted (the gateway process running it stopped)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, ClassVar

__all__ = [
    "ERROR_CLASSES",
    "AuthenticationFailed",
    "BudgetExceeded",
    "CerverError",
    "ComputeError",
    "ComputeTimeout",
    "Conflict",
    "ErrorCode",
    "HarnessError",
    "HarnessTimeout",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "IdempotentStream",
    "InvalidJSON",
    "InvalidRequest",
    "JudgeError",
    "MethodNotAllowed",
    "MissingDependency",
    "NoOutput",
    "NoProviderQualifies",
    "NotConfigured",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RunCancelled",
    "RunFailure",
    "RunInterrupted",
    "SandboxGone",
    "SessionBusy",
    "SessionClosed",
    "StepLimitReached",
    "UnknownModel",
    "UnknownPlugin",
    "UpstreamError",
    "UserError",
    "ValidationFailed",
    "VariantTimeout",
    "did_you_mean",
    "error_class",
]


class ErrorCode(StrEnum):
    """Every stable ``code`` a client can see; one exception class each (see the tree above)."""

    INTERNAL_ERROR = "internal_error"
    INVALID_REQUEST = "invalid_request"
    INVALID_JSON = "invalid_json"
    VALIDATION_ERROR = "validation_error"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    MODEL_NOT_FOUND = "model_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    SESSION_BUSY = "session_busy"
    SESSION_CLOSED = "session_closed"
    NO_PROVIDER_QUALIFIES = "no_provider_qualifies"
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"
    IDEMPOTENT_STREAM = "idempotent_stream"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    BUDGET_EXCEEDED = "budget_exceeded"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNKNOWN_PLUGIN = "unknown_plugin"
    MISSING_DEPENDENCY = "missing_dependency"
    NOT_CONFIGURED = "not_configured"
    CANCELLED = "cancelled"
    RUN_FAILED = "run_failed"
    HARNESS_ERROR = "harness_error"
    UPSTREAM_ERROR = "upstream_error"
    TIMEOUT = "timeout"
    MAX_STEPS = "max_steps"
    NO_OUTPUT = "no_output"
    COMPUTE_ERROR = "compute_error"
    COMPUTE_TIMEOUT = "compute_timeout"
    SANDBOX_GONE = "sandbox_gone"
    JUDGE_ERROR = "judge_error"
    VARIANT_TIMEOUT = "variant_timeout"
    INTERRUPTED = "interrupted"


class CerverError(Exception):
    """Base class: a message for people, a stable code for programs.

    Args:
        message: what went wrong, naming the bad value and the fix.
        context: JSON-ready values a program can act on (ids, limits, variables to set).
        retryable: overrides the class's default (e.g. an upstream 503 is, a 400 is not).
    """

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR
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


class UserError(CerverError):
    """The request cannot succeed as sent; retrying it unchanged will fail again."""

    code = ErrorCode.INVALID_REQUEST
    status_code = 400


class InvalidRequest(UserError):
    code = ErrorCode.INVALID_REQUEST
    status_code = 400


class InvalidJSON(InvalidRequest):
    """The request body does not parse as JSON."""

    code = ErrorCode.INVALID_JSON


class ValidationFailed(InvalidRequest):
    """The body parsed but does not match the schema (the API keeps FastAPI's 422 shape)."""

    code = ErrorCode.VALIDATION_ERROR
    status_code = 422


class AuthenticationFailed(UserError):
    code = ErrorCode.UNAUTHENTICATED
    status_code = 401


class PermissionDenied(UserError):
    code = ErrorCode.FORBIDDEN
    status_code = 403


class NotFound(UserError):
    code = ErrorCode.NOT_FOUND
    status_code = 404


class UnknownModel(NotFound):
    """A model name that no harness serves (the compatibility surfaces' ``model``)."""

    code = ErrorCode.MODEL_NOT_FOUND


class MethodNotAllowed(UserError):
    code = ErrorCode.METHOD_NOT_ALLOWED
    status_code = 405


class Conflict(UserError):
    code = ErrorCode.CONFLICT
    status_code = 409


class SessionBusy(Conflict):
    code = ErrorCode.SESSION_BUSY
    retryable = True


class SessionClosed(Conflict):
    code = ErrorCode.SESSION_CLOSED


class NoProviderQualifies(Conflict):
    """No executable compute provider meets the requirements and policy; ``context`` holds
    the full recommendation report."""

    code = ErrorCode.NO_PROVIDER_QUALIFIES


class IdempotencyKeyInUse(Conflict):
    """The first request with this ``Idempotency-Key`` is still running."""

    code = ErrorCode.IDEMPOTENCY_KEY_IN_USE
    retryable = True


class IdempotentStream(Conflict):
    """The first request with this ``Idempotency-Key`` was a stream, which is not replayed."""

    code = ErrorCode.IDEMPOTENT_STREAM


class IdempotencyKeyReused(UserError):
    """This ``Idempotency-Key`` came with a different request."""

    code = ErrorCode.IDEMPOTENCY_KEY_REUSED
    status_code = 422


class BudgetExceeded(UserError):
    code = ErrorCode.BUDGET_EXCEEDED
    status_code = 402


class PayloadTooLarge(UserError):
    code = ErrorCode.PAYLOAD_TOO_LARGE
    status_code = 413


class UnknownPlugin(UserError):
    code = ErrorCode.UNKNOWN_PLUGIN
    status_code = 400


class MissingDependency(CerverError):
    """An optional SDK is not installed; the message names the extra to install."""

    code = ErrorCode.MISSING_DEPENDENCY
    status_code = 500


class NotConfigured(CerverError):
    """The gateway lacks configuration a request needs; the message names the setting."""

    code = ErrorCode.NOT_CONFIGURED
    status_code = 503


class RunCancelled(CerverError):
    """The run was cancelled (by a request, or by the gateway shutting down) before it ended."""

    code = ErrorCode.CANCELLED
    status_code = 409


class RunFailure(CerverError):
    """A backend (model upstream, sandbox, judge) failed while doing the work."""

    code = ErrorCode.RUN_FAILED
    status_code = 502


class HarnessError(RunFailure):
    code = ErrorCode.HARNESS_ERROR


class UpstreamError(HarnessError):
    """The model provider answered with an error or could not be reached."""

    code = ErrorCode.UPSTREAM_ERROR


class HarnessTimeout(HarnessError):
    """A harness (a CLI in its sandbox) did not finish within its time limit."""

    code = ErrorCode.TIMEOUT
    status_code = 504
    retryable = True


class StepLimitReached(HarnessError):
    """The model was still calling tools after ``max_steps`` model calls; the work is kept."""

    code = ErrorCode.MAX_STEPS


class NoOutput(HarnessError):
    """The turn ended without an assistant text message."""

    code = ErrorCode.NO_OUTPUT


class ComputeError(RunFailure):
    code = ErrorCode.COMPUTE_ERROR


class ComputeTimeout(ComputeError):
    code = ErrorCode.COMPUTE_TIMEOUT
    status_code = 504


class SandboxGone(ComputeError):
    """The sandbox no longer exists on its provider (expired or deleted)."""

    code = ErrorCode.SANDBOX_GONE
    status_code = 410


class JudgeError(RunFailure):
    code = ErrorCode.JUDGE_ERROR


class VariantTimeout(RunFailure):
    """A fan-out variant's turn ran past ``variant_timeout_s`` and was cancelled."""

    code = ErrorCode.VARIANT_TIMEOUT
    status_code = 504


class RunInterrupted(RunFailure):
    """The gateway process running the work stopped; another process reclaimed it."""

    code = ErrorCode.INTERRUPTED
    status_code = 503
    retryable = True


#: The class each code turns back into: the one place a code is resolved to a class.
ERROR_CLASSES: Mapping[ErrorCode, type[CerverError]] = {
    ErrorCode.INTERNAL_ERROR: CerverError,
    ErrorCode.INVALID_REQUEST: InvalidRequest,
    ErrorCode.INVALID_JSON: InvalidJSON,
    ErrorCode.VALIDATION_ERROR: ValidationFailed,
    ErrorCode.UNAUTHENTICATED: AuthenticationFailed,
    ErrorCode.FORBIDDEN: PermissionDenied,
    ErrorCode.NOT_FOUND: NotFound,
    ErrorCode.MODEL_NOT_FOUND: UnknownModel,
    ErrorCode.METHOD_NOT_ALLOWED: MethodNotAllowed,
    ErrorCode.CONFLICT: Conflict,
    ErrorCode.SESSION_BUSY: SessionBusy,
    ErrorCode.SESSION_CLOSED: SessionClosed,
    ErrorCode.NO_PROVIDER_QUALIFIES: NoProviderQualifies,
    ErrorCode.IDEMPOTENCY_KEY_IN_USE: IdempotencyKeyInUse,
    ErrorCode.IDEMPOTENT_STREAM: IdempotentStream,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: IdempotencyKeyReused,
    ErrorCode.BUDGET_EXCEEDED: BudgetExceeded,
    ErrorCode.PAYLOAD_TOO_LARGE: PayloadTooLarge,
    ErrorCode.UNKNOWN_PLUGIN: UnknownPlugin,
    ErrorCode.MISSING_DEPENDENCY: MissingDependency,
    ErrorCode.NOT_CONFIGURED: NotConfigured,
    ErrorCode.CANCELLED: RunCancelled,
    ErrorCode.RUN_FAILED: RunFailure,
    ErrorCode.HARNESS_ERROR: HarnessError,
    ErrorCode.UPSTREAM_ERROR: UpstreamError,
    ErrorCode.TIMEOUT: HarnessTimeout,
    ErrorCode.MAX_STEPS: StepLimitReached,
    ErrorCode.NO_OUTPUT: NoOutput,
    ErrorCode.COMPUTE_ERROR: ComputeError,
    ErrorCode.COMPUTE_TIMEOUT: ComputeTimeout,
    ErrorCode.SANDBOX_GONE: SandboxGone,
    ErrorCode.JUDGE_ERROR: JudgeError,
    ErrorCode.VARIANT_TIMEOUT: VariantTimeout,
    ErrorCode.INTERRUPTED: RunInterrupted,
}


def error_class(code: ErrorCode | str) -> type[CerverError]:
    """The exception class for ``code``.

    Raises:
        ValueError: ``code`` is not an :class:`ErrorCode` (e.g. from a newer server).
    """
    return ERROR_CLASSES[ErrorCode(code)]


def did_you_mean(value: str, known: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest known name, or ``""``."""
    matches = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    return f" Did you mean '{matches[0]}'?" if matches else ""
