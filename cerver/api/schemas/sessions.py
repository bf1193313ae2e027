"""Bodies of the session routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cerver.services.sessions import ComputeChoice, HarnessChoice
from cerver.store.schema import MAX_INTEGER
from cerver.types import Entry, Role, SessionStatus, Usage

__all__ = [
    "ComputeSpec",
    "HarnessSpec",
    "HarnessSwitch",
    "InputCreate",
    "MessagesPublic",
    "Policy",
    "ReportedUsage",
    "Requirements",
    "SessionCreate",
    "SessionPublic",
    "SessionsPublic",
    "harness_choice",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HarnessSpec(_Body):
    type: str = Field(description="Harness name, e.g. 'anthropic', 'openai'.")
    model: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class ComputeSpec(_Body):
    provider: str | None = Field(
        default=None, min_length=1, description="Compute provider, e.g. 'local'."
    )
    compute_id: str | None = Field(
        default=None, min_length=1, description="A registered compute (relay)."
    )


class Requirements(_Body):
    runtime: str | None = None
    package_install: bool | None = None
    public_preview: bool | None = None
    persistence_level: Literal["low", "medium", "high"] | None = None
    timeout_minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    browser: bool | None = None
    network: bool | None = Field(default=None, description="Give plain code runs network access.")


class Policy(_Body):
    mode: Literal["balanced", "fastest", "cheapest", "resilient", "pinned"] = "balanced"
    pinned_provider: str | None = None
    allowed_providers: list[str] | None = None
    max_cost_usd: float | None = Field(default=None, ge=0)
    max_startup_ms: float | None = Field(default=None, ge=0)


def harness_choice(harness: str | HarnessSpec | None, model: str | None) -> HarnessChoice:
    if isinstance(harness, HarnessSpec):
        return HarnessChoice(harness.type, model or harness.model, harness.options)
    return HarnessChoice(harness, model)


class SessionCreate(_Body):
    session_name: str | None = Field(default=None, max_length=200)
    user: str | None = Field(default=None, max_length=200, description="Your app's end-user id.")
    task: str | None = None
    workload: str | None = None
    repo: dict[str, Any] | None = None
    harness: str | HarnessSpec | None = None
    model: str | None = None
    system_prompt: str | None = None
    compute: ComputeSpec | None = Field(
        default=None, description="null: transcript-only; omitted: the gateway's default compute."
    )
    requirements: Requirements | None = None
    policy: Policy | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    parent_session_id: str | None = None
    max_cost_usd: float | None = Field(
        default=None,
        ge=0,
        description="Refuse turns (402 budget_exceeded) once the session has spent this much.",
    )
    fallback_models: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Models to call, in order, when the session's model stays unavailable "
        "after retries (same harness).",
    )

    def compute_choice(self) -> ComputeChoice:
        if "compute" not in self.model_fields_set:
            return ComputeChoice("routed")
        if self.compute is None:
            return ComputeChoice("none")
        return ComputeChoice("provider", self.compute.provider, self.compute.compute_id)


class SessionPublic(BaseModel):
    session_id: str
    session_name: str | None
    user: str | None
    task: str | None
    workload: str | None
    status: SessionStatus
    harness: str
    model: str
    system_prompt: str | None
    provider: str | None
    compute_id: str | None
    sandbox_id: str | None
    parent_session_id: str | None
    metadata: dict[str, Any]
    requirements: dict[str, Any] | None
    policy: dict[str, Any] | None
    routing: dict[str, Any] | None
    max_cost_usd: float | None = None
    fallback_models: list[str] = Field(default_factory=list)
    message_count: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    metrics: dict[str, Any] | None = None
    transcript: list[Entry] | None = None


class SessionsPublic(BaseModel):
    sessions: list[SessionPublic]
    next_cursor: str | None


class MessagesPublic(BaseModel):
    session_id: str
    messages: list[Entry]
    next_after_seq: int | None


class ReportedUsage(Usage):
    """What a caller reports for its own assistant turn: counted in the ledger and budgets, so
    never negative (a negative cost would lower a budget's spend) and within the store's
    columns."""

    input_tokens: int = Field(default=0, ge=0, le=MAX_INTEGER)
    output_tokens: int = Field(default=0, ge=0, le=MAX_INTEGER)
    cost_usd: float | None = Field(default=None, ge=0)


class InputCreate(_Body):
    role: Role = "user"
    content: str = Field(max_length=1_000_000)
    model: str | None = None
    harness: str | None = None
    usage: ReportedUsage | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    multitask: Literal["enqueue", "reject"] = "enqueue"

    @field_validator("role")
    @classmethod
    def _caller_roles(cls, role: str) -> str:
        if role in ("tool", "event"):
            raise ValueError("role must be 'user', 'assistant' or 'system' for caller input")
        return role


class HarnessSwitch(_Body):
    harness: str | HarnessSpec | None = None
    model: str | None = None
    # The seed's /switch-tool body says "tool".
    tool: str | None = None
