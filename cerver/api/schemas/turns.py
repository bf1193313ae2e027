"""Bodies of ``POST /v2/sessions/{id}/run-llm``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cerver.api.schemas.errors import FailurePublic
from cerver.api.schemas.sessions import HarnessSpec
from cerver.types import Entry, Usage

__all__ = ["TurnCreate", "TurnPublic"]


class TurnCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = Field(min_length=1, max_length=1_000_000)
    model: str | None = None
    harness: str | HarnessSpec | None = Field(
        default=None, description="Switch harness for this turn and the ones after it."
    )
    system_prompt: str | None = None
    max_steps: int | None = Field(default=None, ge=1, le=100)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stream: bool = False
    multitask: Literal["enqueue", "reject"] = "enqueue"


class TurnPublic(BaseModel):
    session_id: str
    run_id: str
    status: str
    message: Entry | None
    usage: Usage
    cost_estimate_usd: float | None
    latency_ms: float
    harness: str
    model: str
    answered_model: str | None = Field(
        default=None, description="The model that answered (a fallback when `model` was down)."
    )
    error: FailurePublic | None = None
