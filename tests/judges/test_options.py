"""Judge options: a judge from an entry point takes its own typed options, the built-ins take
theirs, and the request's old top-level fields still reach them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cerver.api.schemas.fanouts import JudgeBody
from cerver.errors import InvalidRequest
from cerver.registry import judge_registry
from cerver.services.judging import build_judge
from judges.base import JudgeContext, JudgeSpec
from judges.composite import CompositeJudge
from judges.tests import TestsJudge
from tests.judges.conftest import variant
from tests.plugin_dist import install_plugin

LENGTH_JUDGE = '''
    from typing import ClassVar

    from cerver.options import PluginOptions
    from judges.base import Judge, JudgeContext, VariantScore, Verdict, decide


    class LengthJudge(Judge):
        """Prefers answers close to a target length (a third-party judge)."""

        name: ClassVar[str] = "length"

        class Options(PluginOptions):
            target: int
            unit: str = "chars"

        async def judge(self, ctx: JudgeContext) -> Verdict:
            target = self.options.target
            scores = [
                VariantScore(
                    v.variant_id,
                    1 / (1 + abs(len(v.output) - target)),
                    [f"{len(v.output)} {self.options.unit}"],
                )
                for v in ctx.variants
            ]
            return decide(self.name, scores)
'''


@pytest.fixture
def length_judge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(
        tmp_path,
        monkeypatch,
        judge_registry,
        group="cerver.judges",
        name="length",
        module="cerver_length_judge",
        target="LengthJudge",
        source=LENGTH_JUDGE,
    )


async def test_an_entry_point_judge_receives_its_own_options(length_judge: None) -> None:
    judge = build_judge(JudgeSpec("length", options={"target": 5, "unit": "letters"}))
    ctx = JudgeContext("q", [variant("v1", "a" * 20), variant("v2", "abcde"), variant("v3", "")])

    verdict = await judge.judge(ctx)

    assert type(judge).__module__ == "cerver_length_judge"
    assert judge.options.target == 5  # type: ignore[attr-defined]
    assert verdict.winner_variant_id == "v2"
    assert verdict.scores[1].reasons == ["5 letters"]


@pytest.mark.parametrize(
    ("options", "field"),
    [({}, "target"), ({"target": "five"}, "target"), ({"target": 1, "x": 1}, "x")],
)
def test_a_bad_entry_point_judge_option_names_the_field_and_the_judge(
    length_judge: None, options: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        build_judge(JudgeSpec("length", options=options))

    assert (caught.value.context["plugin"], caught.value.context["field"]) == ("length", field)
    assert f"'{field}'" in caught.value.message and "judge 'length'" in caught.value.message


def test_top_level_fields_of_a_request_become_the_built_in_s_options() -> None:
    body = JudgeBody.model_validate({"type": "tests", "command": "pytest -q", "timeout_s": 30})

    judge = build_judge(body.spec())

    assert isinstance(judge, TestsJudge)
    assert (judge.command, judge.timeout_s) == ("pytest -q", 30)


def test_a_composite_hands_each_part_the_options_it_takes() -> None:
    body = JudgeBody.model_validate(
        {
            "type": "composite",
            "model": "judge-model",
            "weights": {"tests": 0.5, "llm": 0.5},
            "command": "pytest -q",
            "rubric": "be right",
            "gate": None,
        }
    )

    judge = build_judge(body.spec())

    assert isinstance(judge, CompositeJudge)
    tests_part, llm_part = judge.parts["tests"][0], judge.parts["llm"][0]
    assert isinstance(tests_part, TestsJudge) and tests_part.command == "pytest -q"
    assert (llm_part.model, llm_part.rubric) == ("judge-model", "be right")  # type: ignore[attr-defined]


def test_a_composite_refuses_an_option_none_of_its_parts_takes() -> None:
    spec = JudgeSpec("composite", options={"weights": {"consensus": 1}, "rubric": "x"})

    with pytest.raises(InvalidRequest) as caught:
        build_judge(spec)

    assert (caught.value.context["plugin"], caught.value.context["field"]) == (
        "composite",
        "rubric",
    )


def test_a_gate_is_a_judge_spec_in_the_options() -> None:
    body = JudgeBody.model_validate(
        {"type": "cheapest", "gate": {"type": "tests", "command": "make test"}, "threshold": 1}
    )

    judge = build_judge(body.spec())

    assert isinstance(judge.gate, TestsJudge) and judge.gate.command == "make test"  # type: ignore[attr-defined]
    assert judge.threshold == 1  # type: ignore[attr-defined]
