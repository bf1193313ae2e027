"""A failure as a value: the form a :class:`~cerver.errors.CerverError` travels in.

An exception is the right form where a failure is raised and where the API answers it; in
between (a harness's ``Error`` event, a turn's result, a fan-out variant's outcome, an SSE
``error`` event, a stored variant row) it is data, and data is this one frozen value, never a
hand-built dict. The conversion back to the exception goes through
:data:`cerver.errors.ERROR_CLASSES`, keyed by code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn, Self

from cerver.errors import ERROR_CLASSES, CerverError, ErrorCode

__all__ = ["Failure"]


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure as a value: what travels from a harness or a backend to the HTTP body.

    Built from any :class:`CerverError` (:meth:`from_error`) or any exception
    (:meth:`from_exception`: a non-Cerver one is an ``internal_error``), it turns back into
    the matching exception with :meth:`to_error` / :meth:`raise_`. Its JSON form
    (:meth:`to_json`) is the HTTP error body: ``{"detail", "code", "retryable", "context"}``.

    Attributes:
        code: the stable code; a plain string is checked against :class:`ErrorCode`.
        message: what went wrong, for people (``detail`` in JSON).
        retryable: whether the same request may succeed later.
        context: JSON-ready values naming what failed (a read-only copy of what it was given).
    """

    code: ErrorCode
    message: str
    retryable: bool = False
    context: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A code outside the enum fails here, where it is made, not at a client.
        object.__setattr__(self, "code", ErrorCode(self.code))
        object.__setattr__(self, "context", MappingProxyType(dict(self.context)))

    @classmethod
    def from_error(cls, exc: CerverError) -> Self:
        return cls(exc.code, exc.message, exc.retryable, dict(exc.context))

    @classmethod
    def from_exception(cls, exc: BaseException) -> Self:
        """Any exception: a :class:`CerverError` keeps its fields; anything else is a bug, an
        ``internal_error`` naming only the exception's type (its text may hold internals that
        belong in the gateway's log, not in a client's hands)."""
        if isinstance(exc, CerverError):
            return cls.from_error(exc)
        return cls(
            ErrorCode.INTERNAL_ERROR,
            f"Internal error ({type(exc).__name__}); see the gateway log.",
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The inverse of :meth:`to_json`.

        Raises:
            ValueError: ``data`` has no string ``detail`` or its ``code`` is not an
                :class:`ErrorCode`.
        """
        detail = data.get("detail")
        if not isinstance(detail, str):
            raise ValueError(f"A failure's 'detail' must be a string, not {detail!r}.")
        return cls(
            ErrorCode(data.get("code")),
            detail,
            bool(data.get("retryable", False)),
            dict(data.get("context") or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "detail": self.message,
            "code": self.code.value,
            "retryable": self.retryable,
            "context": dict(self.context),
        }

    def with_context(self, **values: Any) -> Self:
        """This failure with ``values`` added to its context."""
        return type(self)(self.code, self.message, self.retryable, {**self.context, **values})

    def to_error(self) -> CerverError:
        """The exception of this failure's code, with the same message, context and
        retryability."""
        cls = ERROR_CLASSES[self.code]
        return cls(self.message, context=dict(self.context), retryable=self.retryable)

    def raise_(self) -> NoReturn:
        raise self.to_error()
