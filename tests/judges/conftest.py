"""Test doubles for judges: a scripted model caller and a scripted sandbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cerver.types import ExecResult, Usage
from judges.base import ModelAnswer, VariantOutput


@dataclass
class FunctionModel:
    """A ModelCall whose answer is ``answer(prompt)``; records every call."""

    answer: Callable[[str], str]
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(
        self, *, harness: str | None, model: str, prompt: str, system: str | None
    ) -> ModelAnswer:
        self.calls.append({"harness": harness, "model": model, "prompt": prompt})
        return ModelAnswer(self.answer(prompt), Usage(input_tokens=10, output_tokens=5))


@dataclass
class ScriptedSandbox:
    """A sandbox whose ``exec`` answers with a fixed result."""

    result: ExecResult
    commands: list[str] = field(default_factory=list)
    sandbox_id: str = "sbx_test"

    async def exec(self, command: str, *, timeout: float = 60.0, env: Any = None) -> ExecResult:
        self.commands.append(command)
        return self.result


def variant(
    variant_id: str,
    output: str = "",
    *,
    model: str = "m",
    tokens: int = 10,
    cost: float | None = None,
    latency_ms: float = 100.0,
    sandbox: Any = None,
) -> VariantOutput:
    return VariantOutput(
        variant_id=variant_id,
        harness="anthropic",
        model=model,
        status="completed",
        output=output,
        usage=Usage(input_tokens=tokens, output_tokens=0, cost_usd=cost),
        latency_ms=latency_ms,
        sandbox=sandbox,
    )
