"""The tests, consensus, cheapest, fastest and composite judges on scripted outputs."""

from __future__ import annotations

import pytest

from cerver.errors import InvalidRequest, UnknownPlugin
from cerver.services.judging import build_judge
from cerver.types import ExecResult
from judges.base import JudgeContext, JudgeSpec
from judges.consensus import ConsensusJudge, similarity
from judges.tests import TestsJudge, score_test_output
from tests.judges.conftest import FunctionModel, ScriptedSandbox, variant


def _result(stdout: str, exit_code: int) -> ExecResult:
    return ExecResult(stdout=stdout, exit_code=exit_code, duration_ms=1)


@pytest.mark.parametrize(
    ("stdout", "exit_code", "score"),
    [
        ("4 passed in 0.1s", 0, 1.0),
        ("3 passed, 1 failed in 0.2s", 1, 0.75),
        ("Ran 4 tests\nFAILED (failures=2)", 1, 0.5),
        ("", 0, 1.0),
        ("boom", 2, 0.0),
    ],
)
def test_test_output_scores(stdout: str, exit_code: int, score: float) -> None:
    assert score_test_output(_result(stdout, exit_code))[0] == score


async def test_tests_judge_runs_the_command_in_each_variants_sandbox() -> None:
    good = ScriptedSandbox(_result("5 passed", 0))
    half = ScriptedSandbox(_result("1 passed, 1 failed", 1))
    ctx = JudgeContext(
        "q",
        [variant("v1", sandbox=half), variant("v2", sandbox=good), variant("v3")],
    )
    verdict = await TestsJudge(command="pytest -q").judge(ctx)
    assert good.commands == half.commands == ["pytest -q"]
    assert verdict.winner_variant_id == "v2"
    assert {s.variant_id: s.score for s in verdict.scores} == {"v1": 0.5, "v2": 1.0, "v3": 0.0}
    assert verdict.scores[2].reasons == ["no compute to run the tests in"]


async def test_consensus_picks_the_answer_closest_to_the_others() -> None:
    ctx = JudgeContext(
        "q",
        [
            variant("v1", "the answer is 42"),
            variant("v2", "the answer is 42 because"),
            variant("v3", "bananas"),
            variant("v4", "answer 42"),
        ],
    )
    verdict = await ConsensusJudge().judge(ctx)
    assert verdict.winner_variant_id == "v1"
    assert min(verdict.scores, key=lambda s: s.score).variant_id == "v3"
    assert similarity("a b", "a b") == pytest.approx(1.0)


async def test_identical_answers_are_an_explicit_tie() -> None:
    ctx = JudgeContext("q", [variant("v1", "same"), variant("v2", "same")])
    verdict = await ConsensusJudge().judge(ctx)
    assert verdict.status == "tie" and verdict.winner_variant_id is None
    assert "v1" in (verdict.reason or "") and "v2" in (verdict.reason or "")


async def test_cheapest_among_those_that_pass_the_gate() -> None:
    ok, bad = _result("2 passed", 0), _result("2 failed", 1)
    ctx = JudgeContext(
        "q",
        [
            variant("v1", cost=0.01, sandbox=ScriptedSandbox(bad)),  # cheapest, but fails
            variant("v2", cost=0.05, sandbox=ScriptedSandbox(ok)),
            variant("v3", cost=0.03, sandbox=ScriptedSandbox(ok)),
        ],
    )
    gate = {"type": "tests", "options": {"command": "pytest"}}
    spec = JudgeSpec("cheapest", options={"gate": gate, "threshold": 1.0})
    verdict = await build_judge(spec).judge(ctx)
    assert verdict.winner_variant_id == "v3"
    scores = {s.variant_id: s for s in verdict.scores}
    assert scores["v1"].score == 0.0 and "< 1" in scores["v1"].reasons[0]
    assert scores["v2"].score == pytest.approx(0.6)


async def test_cheapest_falls_back_to_tokens_when_cost_is_unknown() -> None:
    ctx = JudgeContext("q", [variant("v1", tokens=50), variant("v2", tokens=20)])
    verdict = await build_judge(JudgeSpec("cheapest")).judge(ctx)
    assert verdict.winner_variant_id == "v2"
    assert "tokens (cost unknown)" in verdict.scores[1].reasons[-1]


async def test_fastest_wins_on_latency_and_equal_latency_ties() -> None:
    ctx = JudgeContext("q", [variant("v1", latency_ms=300), variant("v2", latency_ms=100)])
    assert (await build_judge(JudgeSpec("fastest")).judge(ctx)).winner_variant_id == "v2"
    tied = JudgeContext("q", [variant("v1", latency_ms=100), variant("v2", latency_ms=100)])
    assert (await build_judge(JudgeSpec("fastest")).judge(tied)).status == "tie"


async def test_composite_blends_weighted_scores() -> None:
    # consensus prefers v1/v2 equally; fastest breaks the tie towards v2.
    ctx = JudgeContext(
        "q",
        [
            variant("v1", "alpha beta", latency_ms=200),
            variant("v2", "alpha beta", latency_ms=100),
            variant("v3", "zzz", latency_ms=100),
        ],
    )
    spec = JudgeSpec("composite", options={"weights": {"consensus": 0.5, "fastest": 0.5}})
    verdict = await build_judge(spec).judge(ctx)
    assert verdict.winner_variant_id == "v2"
    scores = {s.variant_id: s.score for s in verdict.scores}
    assert scores["v2"] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    assert scores["v1"] == pytest.approx(0.5 * 0.5 + 0.5 * 0.5)
    assert any(r.startswith("fastest x0.5") for r in verdict.scores[0].reasons)


async def test_composite_carries_the_llm_parts_cost_and_audit() -> None:
    model = FunctionModel(lambda _: '{"scores": {"A": 2, "B": 8}}')
    ctx = JudgeContext("q", [variant("v1", "x"), variant("v2", "y")], call_model=model)
    spec = JudgeSpec("composite", model="j", options={"weights": {"llm": 1.0, "consensus": 0.0}})
    verdict = await build_judge(spec).judge(ctx)
    assert verdict.winner_variant_id == "v2"
    assert verdict.judge_model == "j" and verdict.audit[0]["judge"] == "llm"
    assert verdict.usage is not None and verdict.usage.output_tokens == 5


def test_specs_that_cannot_judge_are_refused_by_name() -> None:
    with pytest.raises(InvalidRequest, match="needs a model"):
        build_judge(JudgeSpec("llm"))
    with pytest.raises(InvalidRequest, match="Invalid option 'command' for the judge 'tests'"):
        build_judge(JudgeSpec("tests"))
    with pytest.raises(InvalidRequest, match="weights"):
        build_judge(JudgeSpec("composite"))
    with pytest.raises(UnknownPlugin, match="Did you mean 'consensus'"):
        build_judge(JudgeSpec("consensu"))
