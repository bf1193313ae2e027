"""Judges that rank by a measured figure (cost, latency) among variants that pass a gate.

The gate is another judge with a threshold: ``{"type": "cheapest", "gate": {"type":
"tests", "command": "pytest -q"}, "threshold": 1.0}`` keeps the cheapest variant whose tests
all pass. Without a gate every completed variant qualifies. A variant scores
``best / its figure`` (the best scores 1); one that fails the gate scores 0.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Self

from pydantic import Field

from cerver.options import PluginOptions
from judges.base import (
    Judge,
    JudgeBuilder,
    JudgeContext,
    JudgeRef,
    VariantOutput,
    VariantScore,
    Verdict,
    decide,
)

__all__ = ["GatedJudge"]


class GatedJudge(Judge):
    """Lowest :meth:`figure` wins among the variants that score ``threshold`` under ``gate``."""

    unit: str = ""

    def __init__(self, *, gate: Judge | None = None, threshold: float = 0.5) -> None:
        self.gate = gate
        self.threshold = threshold
        self.model = gate.model if gate is not None else None

    class Options(PluginOptions):
        """Rank only variants that score at least ``threshold`` under the ``gate`` judge."""

        gate: JudgeRef | None = None
        threshold: float = Field(default=0.5, ge=0, le=1)

    @classmethod
    def from_options(
        cls, options: PluginOptions, *, model: str | None, build: JudgeBuilder
    ) -> Self:
        assert isinstance(options, GatedJudge.Options)
        gate = build(options.gate.spec()) if options.gate is not None else None
        judge = cls(gate=gate, threshold=options.threshold)
        judge.options = options
        return judge

    def check(self, contestants: Sequence[tuple[str, str]]) -> None:
        if self.gate is not None:
            self.gate.check(contestants)

    @abstractmethod
    def figures(self, variants: list[VariantOutput]) -> tuple[dict[str, float | None], str]:
        """Each variant's figure (lower is better; ``None`` when unknown) and its label."""

    async def judge(self, ctx: JudgeContext) -> Verdict:
        gate_verdict = await self.gate.judge(ctx) if self.gate is not None else None
        passed = {v.variant_id for v in ctx.variants}
        reasons: dict[str, list[str]] = {v.variant_id: [] for v in ctx.variants}
        if gate_verdict is not None:
            for s in gate_verdict.scores:
                ok = s.score >= self.threshold
                reasons[s.variant_id].append(
                    f"gate {gate_verdict.judge}: {s.score:.2f} "
                    f"{'>=' if ok else '<'} {self.threshold:g}"
                )
                if not ok:
                    passed.discard(s.variant_id)
        figures, label = self.figures([v for v in ctx.variants if v.variant_id in passed])
        known = {k: f for k, f in figures.items() if f is not None}
        best = min(known.values(), default=None)
        scores = []
        for v in ctx.variants:
            figure = known.get(v.variant_id)
            if figure is None or best is None:
                if v.variant_id in passed:
                    reasons[v.variant_id].append(f"{label} unknown")
                scores.append(VariantScore(v.variant_id, 0.0, reasons[v.variant_id]))
                continue
            reasons[v.variant_id].append(f"{label} {figure:g}")
            score = best / figure if figure > 0 else 1.0
            scores.append(VariantScore(v.variant_id, score, reasons[v.variant_id]))
        return decide(
            self.name,
            scores,
            judge_model=gate_verdict.judge_model if gate_verdict else None,
            usage=gate_verdict.usage if gate_verdict else None,
            audit=gate_verdict.audit if gate_verdict else None,
            eligible=list(known),
        )
