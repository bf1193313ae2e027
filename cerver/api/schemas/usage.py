"""Bodies of ``GET /v2/usage``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

__all__ = ["UsagePublic", "UsageRow"]


class UsageRow(BaseModel):
    key: str | None
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    unpriced_calls: int


class UsagePublic(BaseModel):
    group_by: str
    since: datetime | None
    until: datetime | None
    user: str | None
    rows: list[UsageRow]
    total: UsageRow
    cost_note: str | None = Field(
        default=None,
        description="Set when cost_usd leaves out calls that have no known price.",
    )
