"""Judges: score the variants of a fan-out and name a winner."""

from judges.base import Judge, JudgeContext, Verdict, VariantOutput, VariantScore

__all__ = ["Judge", "JudgeContext", "VariantOutput", "VariantScore", "Verdict"]
