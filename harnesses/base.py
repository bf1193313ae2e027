"""The Harness contract and the events a harness yields while it writes a turn."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self

from cerver.errors import CerverError, ErrorCode
from cerver.failures import Failure
from cerver.options import PluginOptions
from cerver.types import Entry
from cerver.types import Usage as UsageRecord

if TYPE_CHECKING:
    from cerver.providers import Endpoints
    from cerver.types import ProxyGrant
    from compute.base import Sandbox
    from harnesses.tools import ToolSpec

__all__ = [
    "Error",
    "Harness",
    "HarnessEvent",
    "Message",
    "TextDelta",
    "TurnContext",
    "TurnOptions",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A chunk of assistant text, streamed before its :class:`Message` completes."""

    text: str


@dataclass(frozen=True, slots=True)
class Message:
    """A completed transcript entry: assistant text, a tool call, a tool result, reasoning.

    The gateway persists each one as soon as it is yielded, so a turn that dies half-way keeps
    everything it finished. The harness sets ``role``, ``kind``, ``content``, ``parts`` and the
    entry's ``usage``/``latency_ms``; the gateway fills in provenance it already knows
    (harness, model, provider, run id) where the harness left it empty.
    """

    entry: Entry


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens and cost of one model call, for the ledger (one per upstream request)."""

    model: str
    provider: str
    usage: UsageRecord
    latency_ms: float | None = None
    kind: str = "llm"
    """The ledger row's kind: ``llm`` for a model call; ``llm_estimate`` for a cost a CLI
    reports for calls the model proxy already metered (tokens zero, not counted as calls)."""


@dataclass(frozen=True, slots=True)
class Error:
    """The turn failed; the harness yields this last instead of raising.

    It carries the failure as a value (code, message, retryable, context), which the gateway
    records in the transcript and passes on unchanged to the SSE ``error`` event, the turn's
    result and the HTTP error body. Build it from the exception that describes the failure:
    ``Error.of(StepLimitReached("…"))``.
    """

    failure: Failure

    @classmethod
    def of(cls, exc: CerverError) -> Self:
        return cls(Failure.from_error(exc))

    @property
    def message(self) -> str:
        return self.failure.message

    @property
    def code(self) -> ErrorCode:
        return self.failure.code

    @property
    def retryable(self) -> bool:
        return self.failure.retryable


HarnessEvent = TextDelta | Message | Usage | Error


@dataclass(frozen=True, slots=True)
class TurnOptions:
    """What this one turn asks for (``run-llm``'s fields); ``None`` leaves it to the harness.

    ``max_tokens`` and ``temperature`` win over the session's harness options for this turn
    (see :func:`harnesses.options.sampling`).
    """

    system_prompt: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    max_steps: int = 8


@dataclass(slots=True)
class TurnContext:
    """Everything a harness needs to write one turn.

    Attributes:
        session_id: the session the turn belongs to.
        run_id: the run this turn is recorded under (``run_…``).
        history: the session's transcript before this turn, oldest first; it may contain
            entries written by other harnesses and ``event`` records to skip.
        input: the new user message (already persisted in the transcript).
        model: the model to call, as the harness's provider names it.
        options: this turn's system prompt, token and step limits.
        harness_options: the session's options for this harness, an instance of the
            harness's ``Options`` already validated (``None``: none were given).
        sandbox: the session's compute handle, or ``None`` for a transcript-only session
            (the harness then offers no tools).
        proxy: for a harness with ``uses_model_proxy``, the run's model-proxy token and
            where the proxy is reached (revoked when the turn ends); ``None`` otherwise.
        fallback_models: models to call, in order, when ``model`` stays unavailable after
            retries (the session's ``fallback_models``); entries record the model that
            answered.
        client_tools: tools the app declared and runs itself (offered next to the sandbox
            tools). Only harnesses with ``supports_client_tools`` get any: a call of one is
            yielded as a ``tool_call`` :class:`Message` with ``metadata["client_tool"]`` set
            and no result, and the turn ends after the step that made it; the app's results
            arrive in a later turn's ``history``.
    """

    session_id: str
    run_id: str
    history: list[Entry]
    input: str
    model: str
    options: TurnOptions = field(default_factory=TurnOptions)
    sandbox: Sandbox | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    proxy: ProxyGrant | None = None
    fallback_models: tuple[str, ...] = ()
    harness_options: PluginOptions | None = None
    client_tools: tuple[ToolSpec, ...] = ()

    def conversation(self) -> list[Entry]:
        """The history followed by the new input; just the history when ``input`` is empty
        (a turn that continues from the app's tool results, already the last entries)."""
        if not self.input:
            return list(self.history)
        return [*self.history, Entry(role="user", content=self.input)]


class Harness(ABC):
    """Writes a session's next turn.

    Contract:
        * :meth:`run` yields :class:`TextDelta` while text streams, a :class:`Message` for every
          completed transcript entry (in transcript order), a :class:`Usage` for every model
          call, and at most one :class:`Error`, which is then the last event.
        * Every tool call it yields is followed by a tool result entry, synthesised as an error
          result if the tool could not run, so the transcript never holds a dangling call.
        * It never raises for upstream or tool failures: those become an :class:`Error` event
          (``code`` ``upstream_error`` or ``compute_error``). It may raise
          :class:`~cerver.errors.MissingDependency` on construction when its SDK is missing.
        * Cancellation (the gateway cancelling the task) must leave no background work.
        * It does not touch the store: the gateway persists what it yields.

    Instances are long-lived (one per gateway process and configuration) and may hold a
    pooled HTTP client; use them as async context managers or call :meth:`aclose`.

    Options: a harness that takes per-session options declares them as a nested ``Options``
    model (a :class:`~cerver.options.PluginOptions`); the gateway validates a session's
    ``harness.options`` against it when the request arrives and hands the instance to every
    turn as :attr:`TurnContext.harness_options`. A harness without ``Options`` takes none.
    """

    name: ClassVar[str]
    provider: ClassVar[str]
    default_model: ClassVar[str]
    uses_model_proxy: ClassVar[bool] = False
    supports_client_tools: ClassVar[bool] = False
    """True for harnesses that offer ``TurnContext.client_tools`` and can continue a turn
    from its history alone (an empty ``input``). Others are never given either."""
    """True for harnesses whose model calls come from inside the sandbox (CLI harnesses):
    the gateway then issues ``TurnContext.proxy`` for each run. Their usage is metered by
    the proxy, so they yield :class:`Usage` only for what the proxy cannot see."""

    @classmethod
    def upstream_arguments(cls, endpoints: Endpoints) -> dict[str, Any]:
        """Constructor arguments that point a new instance at its model provider.

        The default: ``base_url`` and ``api_key`` of :attr:`provider`. A harness reaching
        several providers (one per model) overrides this to take each of theirs.

        Raises:
            UnknownPlugin: :attr:`provider` is not in the provider registry.
            NotConfigured: the provider has no key (neither the account's nor the gateway's).
        """
        endpoint = endpoints.require(cls.provider)
        return {"base_url": endpoint.base_url, "api_key": endpoint.api_key}

    async def preflight(
        self, sandbox: Sandbox | None, *, public_url: str | None, client_tools: bool = False
    ) -> None:
        """Check, before the gateway writes anything for the turn, that this harness can run
        in the session's sandbox (``None``: the session has no compute) given the gateway's
        public URL, offering the app's tools if ``client_tools``. Default: every harness can
        (SDK harnesses run in the gateway).

        Raises:
            CerverError: it cannot; the message names what is missing and the fix.
        """
        del sandbox, public_url, client_tools

    @abstractmethod
    def run(self, turn: TurnContext) -> AsyncIterator[HarnessEvent]:
        """Write one turn. See the class docstring for the event contract."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release pooled clients."""

    def forget_session(self, session_id: str) -> None:  # noqa: B027 - optional hook
        """Drop what this harness keeps for ``session_id`` between turns (a cached replay):
        the session was deleted."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
