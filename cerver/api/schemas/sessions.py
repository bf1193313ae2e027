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
    "Limits",
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
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Validated against the harness's Options: the SDK harnesses take "
        "temperature, max_tokens and reasoning; the CLI harnesses extra_args.",
    )


class ComputeSpec(_Body):
    provider: str | None = Field(
        default=None, min_length=1, description="Compute provider, e.g. 'local'."
    )
    compute_id: str | None = Field(
        default=None, min_length=1, description="A registered compute (relay)."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Validated against the provider's Options, e.g. e2b's template, vercel's "
        "image.",
    )

    def choice(self) -> ComputeChoice:
        return ComputeChoice("provider", self.provider, self.compute_id, dict(self.options))


class Limits(_Body):
    """Per-command sandbox limits; unnamed ones take the gateway's defaults
    (``CERVER_SANDBOX_LIMITS``), none may pass its maxima (``CERVER_SANDBOX_LIMITS_MAX``)."""

    processes: int | None = Field(default=None, ge=8, description="Processes and threads.")
    memory_mb: int | None = Field(default=None, ge=32, description="Memory, tmpfs included.")
    cpu_seconds: int | None = Field(default=None, ge=1, description="CPU time of a command.")
    cpus: float | None = Field(default=None, gt=0, description="Cores a command may keep busy.")
    disk_mb: int | None = Field(default=None, ge=1, description="Size of the workspace.")
    open_files: int | None = Field(default=None, ge=16, description="Open files per process.")
    wall_seconds: int | None = Field(default=None, ge=1, description="Longest command timeout.")


class Requirements(_Body):
    runtime: str | None = None
    package_install: bool | None = None
    public_preview: bool | None = None
    persistence_level: Literal["low", "medium", "high"] | None = None
    timeout_minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    browser: bool | None = None
    network: bool | None = Field(
        default=None,
        description="Give the sandbox network access to the hosts the gateway allows "
        "(CERVER_SANDBOX_EGRESS); refused with 400 when the gateway allows none.",
    )
    limits: Limits | None = Field(default=None, description="Per-command resource limits.")


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
        return self.compute.choice()


class SessionPublic(BaseModel):
    session_id: str
    session_name: str | None
    user: str | None
    task: str | None
    workload: str | None
    status: SessionStatus
    harness: str
    model: str
    harness_options: dict[str, Any] = Field(
        default_factory=dict, description="The options the session's harness was given."
    )
    system_prompt: str | None
    provider: str | None
    compute_id: str | None
    sandbox_id: str | None
    compute_options: dict[str, Any] | None = Field(
        default=None, description="The options the session's compute was created with."
    )
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
