"""Judges for a fan-out: built from the request's spec, calling models through the harnesses.

A judge's model call is one harness turn without a sandbox and without a session (nothing is
written to a transcript); its ``Usage`` events are the judge's cost.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from cerver.errors import JudgeError
from cerver.ids import new_id
from cerver.options import options_model
from cerver.registry import Registry, judge_registry
from cerver.services.plugins import HarnessPool
from cerver.services.sessions import HarnessChoice, SessionService
from cerver.types import Usage
from harnesses.base import Error, Message, TurnContext, TurnOptions
from harnesses.base import Usage as UsageEvent
from judges.base import Judge, JudgeSpec, ModelAnswer

__all__ = ["HarnessModelCall", "build_judge"]

JUDGE_CALL_TIMEOUT_S = 300.0


def build_judge(spec: JudgeSpec, registry: Registry = judge_registry) -> Judge:
    """The judge ``spec`` names, with the judges it is made of.

    ``spec.options`` is validated against the judge class's ``Options`` first.

    Raises:
        UnknownPlugin: no judge has that name (with a did-you-mean).
        InvalidRequest: a bad option (the message names the field and the judge), or the
            spec lacks what the judge needs (a model, weights).
    """
    return _Builder(registry)(spec)


@dataclass(frozen=True, slots=True)
class _Builder:
    """The :class:`~judges.base.JudgeBuilder` judges get to build their parts."""

    registry: Registry

    def __call__(self, spec: JudgeSpec) -> Judge:
        cls: type[Judge] = self.registry.load(spec.type)
        options = self.registry.options(spec.type, spec.options)
        return cls.from_options(options, model=spec.model, build=self)

    def option_names(self, type: str) -> frozenset[str]:
        return frozenset(options_model(self.registry.load(type)).model_fields)


@dataclass(slots=True)
class HarnessModelCall:
    """A :class:`~judges.base.ModelCall` that runs one tool-less turn on a harness.

    ``session_id`` only labels the call for the harness (e.g. in its logs).
    """

    harnesses: HarnessPool
    sessions: SessionService
    session_id: str
    timeout_s: float = JUDGE_CALL_TIMEOUT_S

    async def __call__(
        self, *, harness: str | None, model: str, prompt: str, system: str | None
    ) -> ModelAnswer:
        name, model = self.sessions.resolve_harness(HarnessChoice(harness, model))
        turn = TurnContext(
            session_id=self.session_id,
            run_id=new_id("run"),
            history=[],
            input=prompt,
            model=model,
            options=TurnOptions(system_prompt=system, max_steps=1),
        )
        texts: list[str] = []
        usage = Usage()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                async for event in self.harnesses.get(name).run(turn):
                    if isinstance(event, Message) and event.entry.role == "assistant":
                        if event.entry.kind == "text":
                            texts.append(event.entry.content)
                    elif isinstance(event, UsageEvent):
                        usage = usage + event.usage
                    elif isinstance(event, Error):
                        cause = event.failure
                        raise JudgeError(
                            f"The judge model {name}:{model} failed: {cause.message}",
                            context={"model": model, "cause": cause.to_json()},
                            retryable=cause.retryable,
                        )
        except TimeoutError as exc:
            raise JudgeError(
                f"The judge model {name}:{model} did not answer within {self.timeout_s:g} s.",
                context={"model": model},
                retryable=True,
            ) from exc
        return ModelAnswer("".join(texts), usage, (time.perf_counter() - started) * 1000)
