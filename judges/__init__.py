"""Judges: score the variants of a fan-out and name a winner.

Built-in judges (registry names): ``llm`` (:class:`~judges.llm.LLMJudge`), ``tests``,
``consensus``, ``cheapest``, ``fastest`` and ``composite``; resolve them through
``cerver.registry.judge_registry``.
"""

from judges.base import (
    Judge,
    JudgeBuilder,
    JudgeContext,
    JudgeRef,
    JudgeSpec,
    ModelAnswer,
    ModelCall,
    VariantOutput,
    VariantScore,
    Verdict,
    decide,
)

__all__ = [
    "Judge",
    "JudgeBuilder",
    "JudgeContext",
    "JudgeRef",
    "JudgeSpec",
    "ModelAnswer",
    "ModelCall",
    "VariantOutput",
    "VariantScore",
    "Verdict",
    "decide",
]
