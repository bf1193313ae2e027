"""The Judge contract and the Verdict it returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cerver.types import Usage

__all__ = ["Judge", "JudgeContext", "VariantOutput", "VariantScore", "Verdict"]


@dataclass(frozen=True, slots=True)
class VariantOutput:
    variant_id: str
    harness: str
    model: str
    status: str
    output: str
    usage: Usage | None = None
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class JudgeContext:
    input: str
    variants: list[VariantOutput]
    rubric: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VariantScore:
    variant_id: str
    score: float
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Verdict:
    winner_variant_id: str | None
    scores: list[VariantScore]
    judge: str
    judge_model: str | None = None
    excluded: list[str] = field(default_factory=list)
    usage: Usage | None = None
    reason: str | None = None


class Judge(ABC):
    """Scores finished variants.

    Contract: :meth:`judge` sees only variants whose status is ``completed``; it returns a
    :class:`Verdict` whose ``winner_variant_id`` is ``None`` on a tie it cannot break or when no
    variant qualifies (``reason`` says which). It raises :class:`~cerver.errors.JudgeError` when
    it cannot judge at all (its model failed, its command could not run).
    """

    name: ClassVar[str]

    @abstractmethod
    async def judge(self, ctx: JudgeContext) -> Verdict:
        """Score ``ctx.variants`` and pick a winner."""
