"""The fastest variant that passes the gate wins (see :mod:`judges._gated`)."""

from __future__ import annotations

from typing import ClassVar

from judges._gated import GatedJudge
from judges.base import VariantOutput

__all__ = ["FastestJudge"]


class FastestJudge(GatedJudge):
    """Ranks by the variant's turn latency."""

    name: ClassVar[str] = "fastest"

    def figures(self, variants: list[VariantOutput]) -> tuple[dict[str, float | None], str]:
        return {v.variant_id: v.latency_ms for v in variants}, "latency_ms"
