"""The LLM judge: pointwise scores, the pairwise position-swap rule, audit, refusals."""

from __future__ import annotations

import json
import re

import pytest

from cerver.errors import InvalidRequest, JudgeError
from judges.base import JudgeContext
from judges.llm import LLMJudge
from tests.judges.conftest import FunctionModel, variant


def _answers(prompt: str) -> tuple[str, str]:
    found = re.findall(r"Answer [AB]:\n<<<\n(.*?)\n>>>", prompt, re.S)
    return found[0], found[1]


async def test_pointwise_scores_every_answer_and_records_the_audit() -> None:
    model = FunctionModel(
        lambda _: (
            'Sure: {"scores": {"A": {"score": 4, "reason": "thin"}, '
            '"B": {"score": 9, "reason": "complete"}}}'
        )
    )
    judge = LLMJudge(model="judge-model", rubric="be complete")
    ctx = JudgeContext("q", [variant("v1", "short"), variant("v2", "long")], call_model=model)
    verdict = await judge.judge(ctx)
    assert verdict.winner_variant_id == "v2"
    assert [(s.variant_id, s.score, s.reasons) for s in verdict.scores] == [
        ("v1", 0.4, ["thin"]),
        ("v2", 0.9, ["complete"]),
    ]
    assert verdict.judge_model == "judge-model"
    [audit] = verdict.audit
    assert audit["model"] == "judge-model" and "be complete" in audit["prompt"]
    assert "short" in audit["prompt"] and audit["raw"].startswith("Sure:")
    assert verdict.usage is not None and verdict.usage.input_tokens == 10


async def test_pairwise_counts_a_win_only_when_both_orders_agree() -> None:
    # A judge that always prefers the first position: every pair is a draw, so a tie.
    biased = FunctionModel(lambda _: '{"winner": "A"}')
    ctx = JudgeContext("q", [variant("v1", "one"), variant("v2", "two")], call_model=biased)
    verdict = await LLMJudge(model="j", mode="pairwise").judge(ctx)
    assert len(biased.calls) == 2  # both orders
    first, second = (_answers(c["prompt"]) for c in biased.calls)
    assert first == ("one", "two") and second == ("two", "one")
    assert verdict.status == "tie" and verdict.winner_variant_id is None
    assert "position bias" in verdict.scores[0].reasons[0]
    assert [a["order"] for a in verdict.audit] == [["v1", "v2"], ["v2", "v1"]]


async def test_pairwise_winner_is_consistent_across_positions() -> None:
    def prefers_good(prompt: str) -> str:
        a, _ = _answers(prompt)
        return json.dumps({"winner": "A" if a == "good" else "B"})

    ctx = JudgeContext(
        "q",
        [variant("v1", "bad"), variant("v2", "good"), variant("v3", "meh")],
        call_model=FunctionModel(prefers_good),
    )
    verdict = await LLMJudge(model="j", mode="pairwise").judge(ctx)
    assert verdict.winner_variant_id == "v2"
    scores = {s.variant_id: s.score for s in verdict.scores}
    assert scores["v2"] == 1.0
    # v1 and v3 never beat "good"; between them the orders disagree (positional): a draw.
    assert scores["v1"] == scores["v3"] == 0.25


async def test_unreadable_answer_is_a_judge_error() -> None:
    ctx = JudgeContext("q", [variant("v1", "x")], call_model=FunctionModel(lambda _: "no json"))
    with pytest.raises(JudgeError):
        await LLMJudge(model="j").judge(ctx)


async def test_missing_score_is_a_judge_error() -> None:
    model = FunctionModel(lambda _: '{"scores": {"A": {"score": 5}}}')
    ctx = JudgeContext("q", [variant("v1", "x"), variant("v2", "y")], call_model=model)
    with pytest.raises(JudgeError, match="answer B"):
        await LLMJudge(model="j").judge(ctx)


def test_the_judge_model_may_not_be_a_contestant_unless_allowed() -> None:
    contestants = [("anthropic", "claude-a"), ("openai", "gpt-x")]
    with pytest.raises(InvalidRequest, match="allow_contestant"):
        LLMJudge(model="gpt-x").check(contestants)
    LLMJudge(model="gpt-x", allow_contestant=True).check(contestants)
    LLMJudge(model="other").check(contestants)
