"""Bodies of the compute, provider, move and stress-test routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from cerver.api.schemas.sessions import Policy, Requirements
from cerver.services.sessions import ComputeChoice

__all__ = [
    "ComputeMove",
    "ComputePublic",
    "ComputeRegister",
    "ComputesPublic",
    "MovePublic",
    "ProvidersPublic",
    "Resume",
    "StressTestCreate",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComputeRegister(_Body):
    label: str = Field(min_length=1, max_length=200)
    base_url: HttpUrl = Field(description="Where the gateway reaches `cerver relay`.")
    token: str = Field(min_length=8, max_length=500, description="The relay's --token.")
    capabilities: dict[str, Any] = Field(default_factory=dict)


class ComputePublic(BaseModel):
    compute_id: str
    label: str
    provider: str
    base_url: str
    capabilities: dict[str, Any]
    status: Literal["online", "offline"]
    last_heartbeat_at: datetime | None
    created_at: datetime


class ComputesPublic(BaseModel):
    computes: list[ComputePublic]


class ProvidersPublic(BaseModel):
    providers: list[dict[str, Any]] = Field(description="The compute providers.")
    model_providers: list[dict[str, Any]] = Field(
        default_factory=list, description="The model providers of the provider registry."
    )


class ComputeMove(_Body):
    provider: str | None = Field(default=None, min_length=1)
    compute_id: str | None = Field(default=None, min_length=1)
    options: dict[str, Any] = Field(
        default_factory=dict, description="The target provider's options (see ComputeSpec)."
    )
    policy: Policy | None = None
    reason: str = Field(default="requested", max_length=200)

    def choice(self) -> ComputeChoice:
        return ComputeChoice("provider", self.provider, self.compute_id, dict(self.options))


class Resume(_Body):
    provider: str | None = Field(default=None, min_length=1)
    compute_id: str | None = Field(default=None, min_length=1)
    options: dict[str, Any] = Field(
        default_factory=dict, description="The provider's options; default: the session's."
    )

    def choice(self) -> ComputeChoice:
        return ComputeChoice("provider", self.provider, self.compute_id, dict(self.options))


class MovePublic(BaseModel):
    session_id: str
    provider: str | None
    compute_id: str | None
    sandbox_id: str | None
    status: str
    routing: dict[str, Any] | None
    switch: dict[str, Any] | None = None


class StressTestCreate(_Body):
    task: str | None = None
    kind: str | None = None
    workload: str | None = None
    requirements: Requirements | None = None
    providers: list[str] | None = Field(default=None, min_length=1)
    sample_size: int = Field(default=5, ge=1, le=50)
    mode: Literal["simulated", "live"] = "simulated"
