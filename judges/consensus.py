"""A consensus judge: the answer closest to all the others wins.

Similarity is lexical: the cosine of word-count vectors of two answers. Each variant scores
its mean similarity to the other variants, so the answer most others agree with ranks first.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import ClassVar

from judges.base import Judge, JudgeContext, VariantScore, Verdict, decide

__all__ = ["ConsensusJudge", "similarity"]

_WORD = re.compile(r"\w+")


def _vector(text: str) -> Counter[str]:
    return Counter(_WORD.findall(text.lower()))


def similarity(a: str, b: str) -> float:
    """Cosine similarity of the word counts of ``a`` and ``b``, in ``[0, 1]``."""
    va, vb = _vector(a), _vector(b)
    dot = sum(count * vb[word] for word, count in va.items())
    norm = math.sqrt(sum(c * c for c in va.values())) * math.sqrt(sum(c * c for c in vb.values()))
    return dot / norm if norm else 0.0


class ConsensusJudge(Judge):
    name: ClassVar[str] = "consensus"

    async def judge(self, ctx: JudgeContext) -> Verdict:
        variants = ctx.variants
        if len(variants) == 1:
            only = variants[0]
            return decide(self.name, [VariantScore(only.variant_id, 1.0, ["only answer"])])
        vectors = [v.output for v in variants]
        scores = []
        for i, variant in enumerate(variants):
            others = [similarity(vectors[i], vectors[j]) for j in range(len(variants)) if j != i]
            mean = sum(others) / len(others)
            scores.append(
                VariantScore(variant.variant_id, mean, [f"mean similarity {mean:.3f} to others"])
            )
        return decide(self.name, scores)
