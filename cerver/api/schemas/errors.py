"""The error body every route answers with, and the ``error`` of a failed turn or variant."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, Field

from cerver.errors import ErrorCode
from cerver.failures import Failure

__all__ = ["FailurePublic"]


class FailurePublic(BaseModel):
    """:class:`~cerver.failures.Failure` as JSON: ``{detail, code, retryable, context}``."""

    detail: str = Field(description="What went wrong, naming the bad value and the fix.")
    code: ErrorCode = Field(description="A stable code for programs (see cerver/errors.py).")
    retryable: bool = Field(default=False, description="Whether the same request may succeed.")
    context: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, failure: Failure) -> Self:
        return cls.model_validate(failure.to_json())
