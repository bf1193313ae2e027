"""A composite judge: a weighted blend of other judges' scores.

``{"type": "composite", "weights": {"tests": 0.6, "consensus": 0.2, "fastest": 0.2},
"command": "pytest -q"}``: each part is built from the same spec with its own ``type``, runs
on the same variants, and a variant's score is the weighted mean of its parts' scores. A part
that fails fails the composite (the verdict must not quietly drop a judge).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, Self

from cerver.errors import InvalidRequest
from cerver.types import Usage
from judges.base import (
    Judge,
    JudgeBuilder,
    JudgeContext,
    JudgeSpec,
    VariantScore,
    Verdict,
    decide,
)

__all__ = ["CompositeJudge"]


class CompositeJudge(Judge):
    name: ClassVar[str] = "composite"

    def __init__(self, parts: dict[str, tuple[Judge, float]]) -> None:
        if not parts or any(weight < 0 for _, weight in parts.values()):
            raise InvalidRequest("composite needs judges with non-negative weights.")
        if sum(weight for _, weight in parts.values()) <= 0:
            raise InvalidRequest("composite weights must not all be zero.")
        self.parts = parts
        self.model = next((j.model for j, _ in parts.values() if j.model), None)

    @classmethod
    def from_spec(cls, spec: JudgeSpec, build: JudgeBuilder) -> Self:
        if not spec.weights or "composite" in spec.weights:
            raise InvalidRequest(
                'composite needs "weights" naming other judges, e.g. {"type": "composite", '
                '"weights": {"consensus": 0.5, "fastest": 0.5}}.',
                context={"weights": spec.weights},
            )
        parts = {
            name: (build(dataclasses.replace(spec, type=name, weights={})), weight)
            for name, weight in spec.weights.items()
        }
        return cls(parts)

    def check(self, contestants: Sequence[tuple[str, str]]) -> None:
        for judge, _ in self.parts.values():
            judge.check(contestants)

    async def judge(self, ctx: JudgeContext) -> Verdict:
        names = list(self.parts)
        verdicts = await asyncio.gather(*(self.parts[n][0].judge(ctx) for n in names))
        total = sum(weight for _, weight in self.parts.values())
        blended = {v.variant_id: 0.0 for v in ctx.variants}
        reasons: dict[str, list[str]] = {v.variant_id: [] for v in ctx.variants}
        usage: Usage | None = None
        audit: list[dict[str, Any]] = []
        for name, verdict in zip(names, verdicts, strict=True):
            weight = self.parts[name][1]
            for s in verdict.scores:
                blended[s.variant_id] += weight * s.score / total
                detail = f" ({'; '.join(s.reasons)})" if s.reasons else ""
                reasons[s.variant_id].append(f"{name} x{weight:g}: {s.score:.2f}{detail}")
            if verdict.usage is not None:
                usage = verdict.usage if usage is None else usage + verdict.usage
            audit.extend({"judge": name, **entry} for entry in verdict.audit)
        scores = [VariantScore(k, blended[k], reasons[k]) for k in blended]
        return decide(self.name, scores, judge_model=self.model, usage=usage, audit=audit)
