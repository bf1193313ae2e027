"""Bodies of the account routes: the per-turn routing policy and the budgets."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BudgetsPublic", "BudgetsUpdate", "RoutingPolicyPublic", "RoutingPolicyUpdate"]


class RoutingPolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routing_policy: str | dict[str, Any] | None = Field(
        description='A policy {"name", "rules": [{"name", "match", "route"}], "default"}, a '
        'preset name ("frugal-coder", "escalate-on-struggle", "second-opinion") or '
        '{"preset": name}; null clears it.'
    )


class RoutingPolicyPublic(BaseModel):
    routing_policy: dict[str, Any] | None
    presets: list[str]


class BudgetsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_user_max_cost_usd: float | None = Field(
        default=None, ge=0, description="Limit for every end user without their own."
    )
    users: dict[str, float] = Field(
        default_factory=dict, description="Per end-user limits (USD), overriding the default."
    )


class BudgetsPublic(BaseModel):
    default_user_max_cost_usd: float | None = None
    users: dict[str, float] = Field(default_factory=dict)
