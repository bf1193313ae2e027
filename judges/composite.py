"""A composite judge: a weighted blend of other judges' scores.

``{"type": "composite", "options": {"weights": {"tests": 0.6, "consensus": 0.2, "fastest":
0.2}, "command": "pytest -q"}}``: each part is built with the spec's ``model`` and the
options it takes (``command`` goes to ``tests``; ``parts`` gives one part options of its own),
runs on the same variants, and a variant's score is the weighted mean of its parts' scores. A
part that fails fails the composite (the verdict must not quietly drop a judge).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar, Self

from pydantic import ConfigDict, Field

from cerver.errors import InvalidRequest
from cerver.options import PluginOptions
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


def _invalid(field: str, problem: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid option {field!r} for the judge 'composite': {problem}.",
        context={"kind": "judge", "plugin": "composite", "field": field},
    )


class CompositeJudge(Judge):
    name: ClassVar[str] = "composite"

    def __init__(self, parts: dict[str, tuple[Judge, float]]) -> None:
        if not parts or any(weight < 0 for _, weight in parts.values()):
            raise InvalidRequest("composite needs judges with non-negative weights.")
        if sum(weight for _, weight in parts.values()) <= 0:
            raise InvalidRequest("composite weights must not all be zero.")
        self.parts = parts
        self.model = next((j.model for j, _ in parts.values() if j.model), None)

    class Options(PluginOptions):
        """``weights`` names the parts; ``parts`` gives a part its own options. Any other
        option is shared: it goes to every part that takes it (and must suit one)."""

        model_config = ConfigDict(extra="allow", frozen=True)

        weights: dict[str, float] = Field(default_factory=dict)
        parts: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @classmethod
    def from_options(
        cls, options: PluginOptions, *, model: str | None, build: JudgeBuilder
    ) -> Self:
        assert isinstance(options, cls.Options)
        weights = options.weights
        if not weights or "composite" in weights:
            raise InvalidRequest(
                'composite needs "weights" naming other judges, e.g. {"type": "composite", '
                '"weights": {"consensus": 0.5, "fastest": 0.5}}.',
                context={"weights": weights},
            )
        if stray := sorted(set(options.parts) - set(weights)):
            raise _invalid(f"parts.{stray[0]}", f"{stray[0]!r} is not one of its weights")
        shared = dict(options.model_extra or {})
        accepted = {name: build.option_names(name) for name in weights}
        if unclaimed := sorted(k for k in shared if not any(k in a for a in accepted.values())):
            raise _invalid(unclaimed[0], f"none of its parts ({', '.join(weights)}) takes it")
        parts = {}
        for name, weight in weights.items():
            own = {k: v for k, v in shared.items() if k in accepted[name]}
            spec = JudgeSpec(name, model, {**own, **options.parts.get(name, {})})
            parts[name] = (build(spec), weight)
        judge = cls(parts)
        judge.options = options
        return judge

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
