"""Bodies of ``POST /v2/sessions/{id}/run-llm``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cerver.api.schemas.errors import FailurePublic
from cerver.api.schemas.sessions import HarnessSpec
from cerver.types import Entry, ToolCallPart, ToolResultPart, Usage
from harnesses.tools import ToolSpec

__all__ = ["ClientTool", "ToolResultsCreate", "TurnCreate", "TurnPublic"]


class ClientTool(BaseModel):
    """One of the app's own tools: the model may call it; the app runs it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON schema of the tool's arguments.",
    )

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)


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
    tools: list[ClientTool] = Field(
        default_factory=list,
        description="The app's own tools, offered next to the sandbox tools. A call of one "
        "stops the turn (status requires_action); send its result to "
        "POST /v2/sessions/{id}/tool-results to continue.",
    )


class ToolResultsCreate(BaseModel):
    """The app's results for the calls a turn stopped at; the turn then continues."""

    model_config = ConfigDict(extra="forbid")

    results: list[ToolResultPart] = Field(min_length=1)
    tools: list[ClientTool] | None = Field(
        default=None, description="Tools to offer from now on; omitted: the same as before."
    )
    max_steps: int | None = Field(default=None, ge=1, le=100)
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
    pending_tool_calls: list[ToolCallPart] = Field(
        default_factory=list,
        description="With status requires_action: the calls of the app's tools to answer.",
    )
