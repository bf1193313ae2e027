"""Bodies of the fan-out routes (``/v2/sessions/{id}/fanout``, ``/v2/fanouts``) and of
spawn / fork."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cerver.api.schemas.errors import FailurePublic
from cerver.api.schemas.sessions import ComputeSpec, HarnessSpec, harness_choice
from cerver.services.fanout import FanoutRequest, VariantRequest
from cerver.services.sessions import ComputeChoice
from cerver.store import FanoutRecord, VariantRecord
from cerver.types import Usage
from judges.base import JudgeSpec

__all__ = [
    "CostTrail",
    "FanoutCreate",
    "FanoutPublic",
    "FanoutSessionCreate",
    "ForkCreate",
    "JudgeBody",
    "PickCreate",
    "SpawnCreate",
    "VariantPublic",
    "VariantSpec",
    "compute_choice",
    "fanout_public",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def compute_choice(body: BaseModel, compute: ComputeSpec | None) -> ComputeChoice | None:
    """``None`` when the body omits ``compute`` (inherit), ``none`` for an explicit null."""
    if "compute" not in body.model_fields_set:
        return None
    if compute is None:
        return ComputeChoice("none")
    return compute.choice()


class VariantSpec(_Body):
    harness: str | HarnessSpec | None = None
    model: str | None = None
    compute: ComputeSpec | None = Field(
        default=None, description="null: transcript-only; omitted: the parent's provider."
    )

    def request(self) -> VariantRequest:
        return VariantRequest(
            harness_choice(self.harness, self.model), compute_choice(self, self.compute)
        )


LEGACY_JUDGE_FIELDS = (
    "harness",
    "rubric",
    "mode",
    "allow_contestant",
    "command",
    "timeout_s",
    "weights",
    "gate",
    "threshold",
)
"""Built-in judges' options a request may still send at the top level of ``judge``."""


class JudgeBody(_Body):
    """``judge: {type, model?, options}``, validated against the judge's ``Options``.

    For the built-in judges the options may also sit at the top level, as before:
    ``{"type": "tests", "command": "pytest -q"}`` means ``{"type": "tests", "options":
    {"command": "pytest -q"}}`` (``harness``, ``rubric``, ``mode``, ``allow_contestant``,
    ``command``, ``timeout_s``, ``weights``, ``gate``, ``threshold``). A field sent both ways
    takes the value in ``options``.
    """

    type: str = Field(
        description="llm, tests, consensus, cheapest, fastest, composite, or a "
        "judge from an installed plug-in."
    )
    model: str | None = Field(default=None, description="The model that judges (llm).")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Validated against the judge's Options."
    )
    harness: str | None = Field(default=None, description="llm: the harness that calls it.")
    rubric: str | None = Field(default=None, description="llm: what answers are scored on.")
    mode: Literal["pointwise", "pairwise"] | None = None
    allow_contestant: bool | None = Field(
        default=None, description="llm: allow the judge model to be a variants' model."
    )
    command: str | None = Field(default=None, description="tests: the command to run.")
    timeout_s: float | None = None
    weights: dict[str, float] | None = Field(default=None, description="composite's parts.")
    gate: JudgeBody | None = Field(default=None, description="cheapest/fastest's gate judge.")
    threshold: float | None = None

    def spec(self) -> JudgeSpec:
        options: dict[str, Any] = {}
        for name in LEGACY_JUDGE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                options[name] = value.spec_json() if isinstance(value, JudgeBody) else value
        return JudgeSpec(type=self.type, model=self.model, options={**options, **self.options})

    def spec_json(self) -> dict[str, Any]:
        """The spec as a nested judge option (``gate``) takes it."""
        spec = self.spec()
        return {"type": spec.type, "model": spec.model, "options": dict(spec.options)}


class FanoutCreate(_Body):
    input: str = Field(min_length=1, max_length=1_000_000)
    variants: list[VariantSpec] = Field(min_length=1, max_length=32)
    judge: JudgeBody | None = Field(default=None, description="None: a person picks.")
    keep: Literal["winner", "none"] = "winner"
    max_concurrency: int = Field(default=8, ge=1, le=32)
    variant_timeout_s: float = Field(default=600, gt=0, le=3600)
    system_prompt: str | None = None
    max_steps: int | None = Field(default=None, ge=1, le=100)
    stream: bool = False

    def request(self) -> FanoutRequest:
        return FanoutRequest(
            input=self.input,
            variants=[v.request() for v in self.variants],
            judge=self.judge.spec() if self.judge else None,
            keep=self.keep,
            max_concurrency=self.max_concurrency,
            variant_timeout_s=self.variant_timeout_s,
            system_prompt=self.system_prompt,
            max_steps=self.max_steps,
        )


class FanoutSessionCreate(FanoutCreate):
    """``POST /v2/fanouts``: a fan-out on a new parent session."""

    user: str | None = Field(default=None, max_length=200)
    session_name: str | None = Field(default=None, max_length=200)
    compute: ComputeSpec | None = Field(
        default=None, description="The parent's compute; omitted: none (transcript-only)."
    )

    def parent(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "session_name": self.session_name,
            "system_prompt": self.system_prompt,
            "compute": compute_choice(self, self.compute) or ComputeChoice("none"),
        }


class PickCreate(_Body):
    variant_id: str
    reason: str | None = Field(default=None, max_length=2000)


class SpawnCreate(_Body):
    harness: str | HarnessSpec | None = None
    model: str | None = None
    compute: ComputeSpec | None = Field(
        default=None, description="null: transcript-only; omitted: the parent's provider."
    )


class ForkCreate(_Body):
    at_seq: int | None = Field(default=None, ge=0, description="Keep entries up to this seq.")


class VariantPublic(BaseModel):
    variant_id: str
    session_id: str | None
    harness: str
    model: str
    provider: str | None
    compute: str | None
    status: str
    output: str | None
    usage: Usage
    cost_estimate_usd: float | None
    latency_ms: float | None
    error: FailurePublic | None
    started_at: datetime | None
    ended_at: datetime | None


class CostTrail(BaseModel):
    """Every variant's tokens, cost and latency, the judge's own, and the total."""

    variants: list[dict[str, Any]]
    judge: dict[str, Any] | None
    total: Usage
    wall_ms: float | None


class FanoutPublic(BaseModel):
    fanout_id: str
    parent_session_id: str
    status: str
    input: str
    keep: str
    judge: dict[str, Any] | None
    variants: list[VariantPublic]
    verdict: dict[str, Any] | None
    winner_variant_id: str | None
    picked_by: str | None
    kept_message_id: int | None = Field(description="The kept entry's seq in the parent.")
    cost: CostTrail
    error: str | None
    created_at: datetime
    completed_at: datetime | None


def _usage(variant: VariantRecord) -> Usage:
    return Usage(
        input_tokens=variant.input_tokens or 0,
        output_tokens=variant.output_tokens or 0,
        cost_usd=variant.cost_usd,
    )


def fanout_public(record: FanoutRecord) -> FanoutPublic:
    variants = [
        VariantPublic(
            variant_id=v.id,
            session_id=v.session_id,
            harness=v.harness,
            model=v.model,
            provider=v.provider,
            compute=v.compute,
            status=v.status,
            output=v.output,
            usage=_usage(v),
            cost_estimate_usd=v.cost_usd,
            latency_ms=v.latency_ms,
            error=FailurePublic.model_validate(v.error) if v.error else None,
            started_at=v.started_at,
            ended_at=v.ended_at,
        )
        for v in record.variants
    ]
    total = Usage()
    for v in variants:
        total = total + v.usage
    judge = None
    if record.judge_latency_ms is not None:
        judge_usage = Usage(
            input_tokens=record.judge_input_tokens or 0,
            output_tokens=record.judge_output_tokens or 0,
            cost_usd=record.judge_cost_usd,
        )
        total = total + judge_usage
        judge = {**judge_usage.model_dump(), "latency_ms": record.judge_latency_ms}
    trail = CostTrail(
        variants=[
            {"variant_id": v.variant_id, **v.usage.model_dump(), "latency_ms": v.latency_ms}
            for v in variants
        ],
        judge=judge,
        total=total,
        wall_ms=record.wall_ms,
    )
    return FanoutPublic(
        fanout_id=record.id,
        parent_session_id=record.parent_session_id,
        status=record.status,
        input=record.input,
        keep=record.keep,
        judge=record.judge,
        variants=variants,
        verdict=record.verdict,
        winner_variant_id=record.winner_variant_id,
        picked_by=record.picked_by,
        kept_message_id=record.kept_message_seq,
        cost=trail,
        error=record.error,
        created_at=record.created_at,
        completed_at=record.completed_at,
    )
