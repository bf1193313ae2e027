"""Judges: score the variants of a fan-out and name a winner."""

from judges.base import Judge, JudgeContext, VariantOutput, VariantScore, Verdict

__all__ = ["Judge", "JudgeContext", "VariantOutput", "VariantScore", "Verdict"]
