"""The cheapest variant that passes the gate wins (see :mod:`judges._gated`)."""

from __future__ import annotations

from typing import ClassVar

from judges._gated import GatedJudge
from judges.base import VariantOutput

__all__ = ["CheapestJudge"]


class CheapestJudge(GatedJudge):
    """Ranks by ``cost_usd``; when a qualifier's cost is unknown (an unpriced model) it ranks
    all of them by total tokens instead, and says so in the reasons."""

    name: ClassVar[str] = "cheapest"

    def figures(self, variants: list[VariantOutput]) -> tuple[dict[str, float | None], str]:
        usages = {v.variant_id: v.usage for v in variants}
        if all(u is not None and u.cost_usd is not None for u in usages.values()):
            return {k: u.cost_usd for k, u in usages.items() if u is not None}, "cost_usd"
        tokens = {
            k: float(u.input_tokens + u.output_tokens) if u is not None else None
            for k, u in usages.items()
        }
        return tokens, "tokens (cost unknown)"
