"""Shared value types: the provider-neutral transcript and the small records around it.

Plug-ins (``harnesses``, ``compute``, ``judges``) depend on this module and on
``cerver.errors`` only. A transcript entry holds one item of a conversation; its ``parts``
carry the structured payload:

* ``text`` entries (user, assistant, system): ``content`` is the text, ``parts`` is empty.
* ``tool_call`` entries (assistant): one :class:`ToolCallPart`.
* ``tool_result`` entries (tool): one :class:`ToolResultPart`.
* ``reasoning`` entries (assistant): one :class:`ReasoningPart`; provider-specific fields
  (signatures, encrypted content) are tagged with the provider that produced them and are
  dropped when the transcript is replayed to another provider.
* ``harness_switched``, ``compute_switched``, ``fanout``, ``verdict``, ``error`` entries
  (role ``event``): records for people and audits; harnesses skip them when replaying.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Entry",
    "EntryKind",
    "EntryStatus",
    "ExecResult",
    "LimitName",
    "Part",
    "ProxyGrant",
    "ReasoningPart",
    "RelayEndpoint",
    "Role",
    "RunStatus",
    "SandboxLimits",
    "SessionStatus",
    "TextPart",
    "ToolCallPart",
    "ToolResultPart",
    "Usage",
]

Role = Literal["user", "assistant", "system", "tool", "event"]
EntryKind = Literal[
    "text",
    "tool_call",
    "tool_result",
    "reasoning",
    "harness_switched",
    "compute_switched",
    "fanout",
    "verdict",
    "error",
]
EntryStatus = Literal["complete", "incomplete", "cancelled"]
SessionStatus = Literal["ready", "running", "paused", "closed", "failed"]
RunStatus = Literal["running", "completed", "failed", "interrupted", "cancelled", "requires_action"]


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ToolCallPart(BaseModel):
    type: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolResultPart(BaseModel):
    type: Literal["tool_result"] = "tool_result"
    tool_call_id: str
    output: str
    is_error: bool = False


class ReasoningPart(BaseModel):
    type: Literal["reasoning"] = "reasoning"
    text: str = ""
    provider: str
    signature: str | None = None
    encrypted: str | None = None


Part = Annotated[
    TextPart | ToolCallPart | ToolResultPart | ReasoningPart, Field(discriminator="type")
]


class Usage(BaseModel):
    """Tokens and cost of one or more model calls.

    ``cost_usd`` is ``None`` when unknown, and ``cost_reason`` then says why (a model no price
    source lists…); ``cost_source`` names the source that priced it (:mod:`cerver.pricing`).
    A sum keeps the first reason of its parts: a total with a reason leaves out the calls that
    could not be priced. A sum of calls priced by different sources has ``cost_source="mixed"``.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    cost_reason: str | None = None
    cost_source: str | None = None

    def __add__(self, other: Usage) -> Usage:
        cost = None
        if self.cost_usd is not None or other.cost_usd is not None:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=cost,
            cost_reason=self.cost_reason or other.cost_reason,
            cost_source=_sum_source(self.cost_source, other.cost_source),
        )


class Entry(BaseModel):
    """One transcript entry. ``seq`` and ``created_at`` are set by the store on append."""

    model_config = ConfigDict(extra="forbid")

    seq: int | None = None
    role: Role
    kind: EntryKind = "text"
    content: str = ""
    parts: list[Part] = Field(default_factory=list)
    harness: str | None = None
    model: str | None = None
    provider: str | None = None
    run_id: str | None = None
    usage: Usage | None = None
    latency_ms: float | None = None
    status: EntryStatus = "complete"
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None

    @property
    def tool_call(self) -> ToolCallPart | None:
        return next((p for p in self.parts if isinstance(p, ToolCallPart)), None)

    @property
    def tool_result(self) -> ToolResultPart | None:
        return next((p for p in self.parts if isinstance(p, ToolResultPart)), None)

    @property
    def reasoning(self) -> ReasoningPart | None:
        return next((p for p in self.parts if isinstance(p, ReasoningPart)), None)

    @property
    def is_conversation(self) -> bool:
        """True for entries a model sees on replay (not switch/fan-out/audit records)."""
        return self.role != "event"


LimitName = Literal["pids", "memory", "cpu_time", "disk", "open_files", "wall_time"]
"""Which :class:`SandboxLimits` limit ended a command (``pids`` is ``processes``)."""


class SandboxLimits(BaseModel):
    """What one sandbox command (its whole process tree) may use; hitting a limit ends it.

    The gateway holds a default set and a maximum set (``CERVER_SANDBOX_LIMITS`` and
    ``CERVER_SANDBOX_LIMITS_MAX``); a session may ask for other values up to the maxima with
    ``requirements.limits``. How each is enforced depends on the host (cgroups, rlimits):
    ``GET /v2/providers`` says, for the ``local`` compute.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    processes: int = Field(default=256, ge=8, description="Processes and threads at once.")
    memory_mb: int = Field(default=1024, ge=32, description="Resident memory, tmpfs included.")
    cpu_seconds: int = Field(default=600, ge=1, description="CPU time of the command.")
    cpus: float = Field(default=1.0, gt=0, description="CPU cores the command may keep busy.")
    disk_mb: int = Field(default=2048, ge=1, description="Size of the workspace.")
    open_files: int = Field(default=1024, ge=16, description="Open files per process.")
    wall_seconds: int = Field(default=3600, ge=1, description="Longest timeout of a command.")


class ExecResult(BaseModel):
    """The outcome of one command. A non-zero ``exit_code`` is a result, not an error.

    ``limit`` names the :class:`SandboxLimits` limit that ended the command, if one did
    (``wall_time`` whenever ``timed_out``).
    """

    stdout: str = ""
    stderr: str = ""
    exit_code: int
    duration_ms: float
    timed_out: bool = False
    limit: LimitName | None = None


def _sum_source(a: str | None, b: str | None) -> str | None:
    if a is None or b is None or a == b:
        return a or b
    return "mixed"


@dataclass(frozen=True, slots=True)
class ProxyGrant:
    """What a CLI run needs to reach its model through the gateway's model proxy.

    Issued by the gateway (``cerver.proxy``) and read by CLI harnesses, so it lives here, in
    the kernel both depend on.

    Attributes:
        token: the run's secret, sent as ``x-api-key`` or ``Authorization: Bearer``.
        run_id: the run it is scoped to.
        session_id: the run's session.
        harness: the harness the run uses (recorded with its usage).
        expires_at: ``time.monotonic()`` deadline after which the token is refused.
        socket_path: the proxy's unix socket on the gateway host; local sandboxes see it at
            the same path. ``None`` when no listener runs.
        account_id: the account the run belongs to: the proxy forwards with that account's
            own provider key when it has one. Never sent to the sandbox.
        public_url: the gateway's public URL (``CERVER_PUBLIC_URL``), where a remote
            sandbox reaches ``/v2/proxy/…``; ``None`` when the gateway has none.
    """

    token: str
    run_id: str
    session_id: str
    harness: str
    expires_at: float
    socket_path: str | None = None
    account_id: str | None = None
    public_url: str | None = None


@dataclass(frozen=True, slots=True)
class RelayEndpoint:
    """Where a registered relay compute is reached: what the gateway's registered-computes
    service resolves a ``compute_id`` to for the ``relay`` compute provider."""

    base_url: str
    token: str = field(repr=False)
