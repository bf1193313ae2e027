"""A tests judge: run a command (``pytest -q``) in each variant's own compute and score it.

The score is the share of tests that passed when the output reports counts (pytest's
``3 passed, 1 failed``, unittest's ``Ran 4 tests`` … ``FAILED (failures=1)``), else 1 for exit
code 0 and 0 otherwise. A variant without compute, or whose sandbox fails, scores 0 with the
reason; only a missing command fails the judge.
"""

from __future__ import annotations

import asyncio
import re
from typing import ClassVar, Self

from pydantic import Field

from cerver.errors import CerverError
from cerver.options import PluginOptions
from cerver.types import ExecResult
from judges.base import (
    Judge,
    JudgeBuilder,
    JudgeContext,
    VariantOutput,
    VariantScore,
    Verdict,
    decide,
)

__all__ = ["TestsJudge", "score_test_output"]

_COUNT = re.compile(r"(\d+) (passed|failed|errors?)\b")
_UNITTEST_RAN = re.compile(r"Ran (\d+) tests?")
_UNITTEST_BAD = re.compile(r"(failures|errors)=(\d+)")


class TestsJudge(Judge):
    """Runs ``command`` in every variant's sandbox, in parallel, ``timeout_s`` each."""

    __test__ = False  # not a pytest test class
    name: ClassVar[str] = "tests"

    def __init__(self, *, command: str, timeout_s: float = 300.0) -> None:
        self.command = command
        self.timeout_s = timeout_s

    class Options(PluginOptions):
        """``command`` runs in each variant's sandbox; exit 0 and passing tests score high."""

        command: str = Field(min_length=1, description='e.g. "pytest -q"')
        timeout_s: float = Field(default=300.0, gt=0, le=3600)

    @classmethod
    def from_options(
        cls, options: PluginOptions, *, model: str | None, build: JudgeBuilder
    ) -> Self:
        assert isinstance(options, cls.Options)
        judge = cls(command=options.command, timeout_s=options.timeout_s)
        judge.options = options
        return judge

    async def judge(self, ctx: JudgeContext) -> Verdict:
        scores = await asyncio.gather(*(self._score(v) for v in ctx.variants))
        return decide(self.name, scores)

    async def _score(self, variant: VariantOutput) -> VariantScore:
        if variant.sandbox is None:
            return VariantScore(variant.variant_id, 0.0, ["no compute to run the tests in"])
        try:
            result = await variant.sandbox.exec(self.command, timeout=self.timeout_s)
        except CerverError as exc:
            return VariantScore(variant.variant_id, 0.0, [f"sandbox failed: {exc.message}"])
        score, reason = score_test_output(result)
        return VariantScore(variant.variant_id, score, [reason])


def score_test_output(result: ExecResult) -> tuple[float, str]:
    """A score in ``[0, 1]`` and its reason for one run of the test command."""
    if result.timed_out:
        return 0.0, "tests timed out"
    text = f"{result.stdout}\n{result.stderr}"
    counts = {"passed": 0, "failed": 0}
    found = False
    for number, kind in _COUNT.findall(text):
        found = True
        counts["passed" if kind == "passed" else "failed"] += int(number)
    if not found and (ran := _UNITTEST_RAN.search(text)):
        found = True
        bad = sum(int(n) for _, n in _UNITTEST_BAD.findall(text))
        counts = {"passed": int(ran.group(1)) - bad, "failed": bad}
    total = counts["passed"] + counts["failed"]
    if found and total:
        score = counts["passed"] / total
        if result.exit_code != 0:
            score = min(score, 1 - 1 / (total + 1))  # a failing exit never scores a full pass
        return score, f"{counts['passed']}/{total} passed (exit {result.exit_code})"
    if result.exit_code == 0:
        return 1.0, "exit 0"
    return 0.0, f"exit {result.exit_code}"
