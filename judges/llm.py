"""An LLM judge: a model scores the answers against a rubric, pointwise or pairwise.

Pointwise: one call shows every answer (labelled ``A``, ``B``…) and asks for a 0–10 score
each. Pairwise: every pair is shown twice, once in each order, and a variant wins the pair only
when both orders agree; a disagreement means the judge preferred a position, not an answer,
and counts as a draw (position-bias control). Calls are made one after another, so an audit
lists them in a reproducible order. Every call's prompt, model and raw answer go into the
verdict's ``audit``.
"""

from __future__ import annotations

import itertools
import json
import string
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Self

from pydantic import Field

from cerver.errors import InvalidRequest, JudgeError
from cerver.options import PluginOptions
from cerver.types import Usage
from judges.base import (
    Judge,
    JudgeBuilder,
    JudgeContext,
    ModelAnswer,
    VariantOutput,
    VariantScore,
    Verdict,
    decide,
)

__all__ = ["LLMJudge"]

DEFAULT_RUBRIC = "Correctness first, then completeness, then clarity and concision."
SYSTEM = (
    "You are an impartial judge comparing answers to the same request. Judge the answers, "
    "not their order or length. Reply with JSON only."
)


class LLMJudge(Judge):
    """Scores answers with a model. ``model`` may not be a contestant's model unless
    ``allow_contestant`` is set (a model grading itself is biased)."""

    name: ClassVar[str] = "llm"

    def __init__(
        self,
        *,
        model: str,
        harness: str | None = None,
        rubric: str | None = None,
        mode: str = "pointwise",
        allow_contestant: bool = False,
    ) -> None:
        if mode not in ("pointwise", "pairwise"):
            raise InvalidRequest(
                f"Unknown llm judge mode {mode!r}: use 'pointwise' or 'pairwise'.",
                context={"mode": mode},
            )
        self.model = model
        self.harness = harness
        self.rubric = rubric
        self.mode = mode
        self.allow_contestant = allow_contestant

    class Options(PluginOptions):
        """The ``llm`` judge's options; its ``model`` is the spec's own ``model``."""

        harness: str | None = Field(default=None, description="The harness that calls it.")
        rubric: str | None = Field(default=None, description="What the answers are scored on.")
        mode: Literal["pointwise", "pairwise"] = "pointwise"
        allow_contestant: bool = Field(
            default=False, description="Allow the judge model to be one of the variants' models."
        )

    @classmethod
    def from_options(
        cls, options: PluginOptions, *, model: str | None, build: JudgeBuilder
    ) -> Self:
        assert isinstance(options, cls.Options)
        if not model:
            raise InvalidRequest(
                'The llm judge needs a model, e.g. "judge": {"type": "llm", "model": '
                '"claude-haiku-4-5"} (pick one that is not a contestant).',
                context={"judge": "llm"},
            )
        judge = cls(
            model=model,
            harness=options.harness,
            rubric=options.rubric,
            mode=options.mode,
            allow_contestant=options.allow_contestant,
        )
        judge.options = options
        return judge

    def check(self, contestants: Sequence[tuple[str, str]]) -> None:
        if self.allow_contestant:
            return
        if any(model == self.model for _, model in contestants):
            raise InvalidRequest(
                f"The judge model {self.model!r} is also a contestant. Judge with another "
                'model, or send "allow_contestant": true to allow it explicitly.',
                context={"judge_model": self.model},
            )

    async def judge(self, ctx: JudgeContext) -> Verdict:
        if ctx.call_model is None:
            raise JudgeError("The llm judge needs a model caller; none was provided.")
        if not ctx.variants:
            return decide(self.name, [], judge_model=self.model)
        session = _Calls(self, ctx)
        if self.mode == "pairwise":
            scores = await self._pairwise(session, ctx.variants)
        else:
            scores = await self._pointwise(session, ctx.variants)
        return decide(
            self.name, scores, judge_model=self.model, usage=session.usage, audit=session.audit
        )

    async def _pointwise(self, calls: _Calls, variants: list[VariantOutput]) -> list[VariantScore]:
        labels = [_label(i) for i in range(len(variants))]
        answers = "\n\n".join(
            f"Answer {label}:\n<<<\n{v.output}\n>>>"
            for label, v in zip(labels, variants, strict=True)
        )
        example = ", ".join(f'"{label}": {{"score": 0-10, "reason": "..."}}' for label in labels)
        prompt = (
            f"{calls.header}\n\n{answers}\n\nScore every answer from 0 to 10 against the "
            f'rubric. Reply with JSON only: {{"scores": {{{example}}}}}'
        )
        data = await calls.ask(prompt, [v.variant_id for v in variants])
        scores = []
        for label, variant in zip(labels, variants, strict=True):
            item = (data.get("scores") or {}).get(label)
            if isinstance(item, int | float):
                item = {"score": item}
            if not isinstance(item, dict) or not isinstance(item.get("score"), int | float):
                raise JudgeError(
                    f"The judge's answer has no score for answer {label}.",
                    context={"raw": calls.audit[-1]["raw"]},
                )
            value = min(max(float(item["score"]), 0.0), 10.0) / 10
            reasons = [str(item["reason"])] if item.get("reason") else []
            scores.append(VariantScore(variant.variant_id, value, reasons))
        return scores

    async def _pairwise(self, calls: _Calls, variants: list[VariantOutput]) -> list[VariantScore]:
        wins = {v.variant_id: 0.0 for v in variants}
        reasons: dict[str, list[str]] = {v.variant_id: [] for v in variants}
        for first, second in itertools.combinations(variants, 2):
            forward = await self._compare(calls, first, second)
            backward = await self._compare(calls, second, first)
            pair = f"{first.variant_id} vs {second.variant_id}"
            if forward == "A" and backward == "B":
                wins[first.variant_id] += 1
                reasons[first.variant_id].append(f"beat {second.variant_id} in both orders")
            elif forward == "B" and backward == "A":
                wins[second.variant_id] += 1
                reasons[second.variant_id].append(f"beat {first.variant_id} in both orders")
            else:
                note = (
                    f"{pair}: draw (orders disagree: position bias)"
                    if "tie" not in (forward, backward)
                    else f"{pair}: draw"
                )
                for v in (first, second):
                    wins[v.variant_id] += 0.5
                    reasons[v.variant_id].append(note)
        games = max(len(variants) - 1, 1)
        return [
            VariantScore(v.variant_id, wins[v.variant_id] / games, reasons[v.variant_id])
            for v in variants
        ]

    async def _compare(self, calls: _Calls, a: VariantOutput, b: VariantOutput) -> str:
        prompt = (
            f"{calls.header}\n\nAnswer A:\n<<<\n{a.output}\n>>>\n\nAnswer B:\n<<<\n{b.output}\n"
            '>>>\n\nWhich answer is better under the rubric? Reply with JSON only: {"winner": '
            '"A" | "B" | "tie", "reason": "..."}'
        )
        data = await calls.ask(prompt, [a.variant_id, b.variant_id])
        winner = str(data.get("winner", "")).strip().upper()
        if winner not in ("A", "B", "TIE"):
            raise JudgeError(
                "The judge's answer names no winner ('A', 'B' or 'tie').",
                context={"raw": calls.audit[-1]["raw"]},
            )
        return "tie" if winner == "TIE" else winner


class _Calls:
    """The model calls of one judging: the shared prompt header, their audit and cost."""

    def __init__(self, judge: LLMJudge, ctx: JudgeContext) -> None:
        assert ctx.call_model is not None
        self._judge = judge
        self._call = ctx.call_model
        rubric = judge.rubric or DEFAULT_RUBRIC
        self.header = f"Rubric: {rubric}\n\nRequest:\n<<<\n{ctx.input}\n>>>"
        self.audit: list[dict[str, Any]] = []
        self.usage = Usage()

    async def ask(self, prompt: str, order: list[str]) -> dict[str, Any]:
        answer: ModelAnswer = await self._call(
            harness=self._judge.harness, model=self._judge.model or "", prompt=prompt, system=SYSTEM
        )
        self.usage = self.usage + answer.usage
        self.audit.append(
            {
                "model": self._judge.model,
                "harness": self._judge.harness,
                "system": SYSTEM,
                "prompt": prompt,
                "order": order,
                "raw": answer.text,
            }
        )
        return _parse_json(answer.text)


def _label(index: int) -> str:
    letters = string.ascii_uppercase
    return letters[index] if index < len(letters) else f"A{index + 1}"


def _parse_json(text: str) -> dict[str, Any]:
    """The JSON object in a model's answer (models wrap it in prose or code fences)."""
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        try:
            value = json.loads(text[start : end + 1])
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
    raise JudgeError(
        "The judge's answer is not the JSON object it was asked for.", context={"raw": text[:2000]}
    )
