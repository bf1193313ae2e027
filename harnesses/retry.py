"""The one retry layer between Cerver and model providers.

Provider SDKs are built with their own retries off (``max_retries=0``), so every failed call
reaches :class:`~harnesses._loop.ToolLoopHarness`, which asks the :class:`RetryPolicy` what to
do: wait and call the same model again, move on to the session's next ``fallback_models``
entry, or give up. Only failures that a later call can fix are retried: 408, 409, 429, 5xx
(529 included), overload/rate-limit errors reported inside a stream, timeouts and connection
failures (:attr:`UpstreamError.retryable`). Other 4xx never are: the request itself must change.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cerver.errors import UpstreamError

__all__ = [
    "RETRYABLE_ERROR_TYPES",
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "retry_after_seconds",
    "status_is_retryable",
]

#: HTTP statuses below 500 that a later, identical request may get past (every 5xx may).
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def status_is_retryable(status: int) -> bool:
    """Whether a provider's HTTP ``status`` is worth retrying: 408, 409, 429 and every 5xx
    (529 "overloaded" included). The one rule for every harness, SDK or CLI."""
    return status in RETRYABLE_STATUSES or status >= 500


#: Provider error types / codes worth retrying (Anthropic ``type``, OpenAI ``type``/``code``),
#: for errors reported inside a stream, where the HTTP status is 200.
RETRYABLE_ERROR_TYPES = frozenset(
    {"overloaded_error", "rate_limit_error", "api_error", "server_error", "rate_limit_exceeded"}
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, honouring ``Retry-After``.

    Attributes:
        max_attempts: calls per model before moving to the next fallback (1 = no retry).
        base_delay: seconds before the first retry; doubles with each attempt.
        max_delay: cap on the computed backoff, in seconds.
        jitter: the backoff is drawn uniformly from ``[d * (1 - jitter), d]`` so that clients
            failing together do not retry together.
        max_retry_after: a ``Retry-After`` longer than this (seconds) is not waited for: the
            policy moves to the next fallback model instead of holding the turn.
        sleep: how to wait (replaced in tests to record delays instead of sleeping).
        random: a source of floats in ``[0, 1)`` for the jitter.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.5
    max_retry_after: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def delay(self, error: UpstreamError, attempt: int) -> float | None:
        """Seconds to wait before call number ``attempt + 1`` to the same model.

        Args:
            error: the failure of call number ``attempt`` (1-based).
            attempt: how many calls to this model failed so far.

        Returns:
            ``None`` when the same model must not be called again: the error is not
            retryable, the attempts are used up, or the provider asked for a longer wait than
            ``max_retry_after``.
        """
        if not error.retryable or attempt >= self.max_attempts:
            return None
        retry_after = error.context.get("retry_after")
        if isinstance(retry_after, int | float):
            return float(retry_after) if retry_after <= self.max_retry_after else None
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return backoff * (1 - self.jitter * self.random())


def retry_after_seconds(headers: object) -> float | None:
    """The ``Retry-After`` (or ``retry-after-ms``) of a response's headers, in seconds.

    Only the delta-seconds form is read; an HTTP-date or a malformed value gives ``None``
    (the backoff applies).
    """
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except (TypeError, ValueError):
            continue
        if seconds >= 0:
            return seconds
    return None
