"""The Judge contract, the values it reads and returns, and the tie rule every judge shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Self

from pydantic import Field

from cerver.options import PluginOptions
from cerver.types import Usage

if TYPE_CHECKING:
    from compute.base import Sandbox

__all__ = [
    "Judge",
    "JudgeBuilder",
    "JudgeContext",
    "JudgeRef",
    "JudgeSpec",
    "ModelAnswer",
    "ModelCall",
    "VariantOutput",
    "VariantScore",
    "Verdict",
    "VerdictStatus",
    "decide",
]

VerdictStatus = Literal["decided", "tie", "no_winner", "failed"]
_TIE_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class VariantOutput:
    """One finished variant as a judge sees it.

    ``sandbox`` is the variant's own compute (``None`` for a transcript-only variant); the
    ``tests`` judge runs its command there.
    """

    variant_id: str
    harness: str
    model: str
    status: str
    output: str
    usage: Usage | None = None
    latency_ms: float | None = None
    sandbox: Sandbox | None = None


@dataclass(frozen=True, slots=True)
class ModelAnswer:
    """What a judge's model call returned: its text, tokens/cost and latency."""

    text: str
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0


class ModelCall(Protocol):
    """Calls a model once, without tools, for a judge.

    Raises:
        JudgeError: the model could not be called or answered with an error.
    """

    async def __call__(
        self, *, harness: str | None, model: str, prompt: str, system: str | None
    ) -> ModelAnswer: ...


@dataclass(frozen=True, slots=True)
class JudgeContext:
    """What a judge gets: the request, the completed variants, and a way to call a model."""

    input: str
    variants: list[VariantOutput]
    call_model: ModelCall | None = None


@dataclass(frozen=True, slots=True)
class JudgeSpec:
    """A judge as a request names it: ``judge: {type, model?, options}``.

    Attributes:
        type: the judge's registry name (``llm``, ``tests``, ``consensus``, ``cheapest``,
            ``fastest``, ``composite``, or one from the ``cerver.judges`` entry points).
        model: the model that judges, for judges that call one (``llm``; ``composite`` hands
            it to its parts).
        options: validated against the judge class's ``Options`` when the judge is built.
    """

    type: str
    model: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


class JudgeRef(PluginOptions):
    """A judge named inside another judge's options (``cheapest``'s ``gate``)."""

    type: str
    model: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    def spec(self) -> JudgeSpec:
        return JudgeSpec(self.type, self.model, self.options)


class JudgeBuilder(Protocol):
    """Builds the judges a judge is made of (``composite``'s parts, a gate)."""

    def __call__(self, spec: JudgeSpec) -> Judge:
        """The judge ``spec`` names. Raises InvalidRequest / UnknownPlugin for a bad one."""
        ...

    def option_names(self, type: str) -> frozenset[str]:
        """The option names the judge ``type`` accepts."""
        ...


@dataclass(frozen=True, slots=True)
class VariantScore:
    """A variant's score in ``[0, 1]`` (higher is better) and why."""

    variant_id: str
    score: float
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judge's decision.

    ``status`` is ``decided`` (``winner_variant_id`` set), ``tie`` (the best scores are equal;
    no winner), ``no_winner`` (nothing qualified) or ``failed`` (the judge could not judge;
    ``reason`` says why). ``audit`` holds what an auditor needs to re-run a model judge: each
    call's prompt, model and raw answer. ``usage`` is the judge's own cost.
    """

    winner_variant_id: str | None
    scores: list[VariantScore]
    judge: str
    judge_model: str | None = None
    excluded: list[str] = field(default_factory=list)
    usage: Usage | None = None
    reason: str | None = None
    status: VerdictStatus = "decided"
    audit: list[dict[str, Any]] = field(default_factory=list)


def decide(
    judge: str,
    scores: Sequence[VariantScore],
    *,
    judge_model: str | None = None,
    usage: Usage | None = None,
    audit: list[dict[str, Any]] | None = None,
    eligible: Sequence[str] | None = None,
) -> Verdict:
    """The verdict for ``scores``: the single best variant wins; equal best scores are a tie.

    Args:
        eligible: only these variant ids may win (default: every scored variant).
    """
    allowed = set(eligible) if eligible is not None else {s.variant_id for s in scores}
    ranked = sorted((s for s in scores if s.variant_id in allowed), key=lambda s: -s.score)
    common: dict[str, Any] = {
        "scores": list(scores),
        "judge": judge,
        "judge_model": judge_model,
        "usage": usage,
        "audit": audit or [],
    }
    if not ranked:
        return Verdict(None, status="no_winner", reason="No variant qualified.", **common)
    best = ranked[0].score
    tied = [s.variant_id for s in ranked if best - s.score <= _TIE_EPSILON]
    if len(tied) > 1:
        reason = f"Tie at score {best:.3f} between {', '.join(tied)}; nothing is kept."
        return Verdict(None, status="tie", reason=reason, **common)
    return Verdict(ranked[0].variant_id, **common)


class Judge(ABC):
    """Scores the finished variants of a fan-out and names a winner.

    Contract:
        * :meth:`judge` sees only variants whose status is ``completed``. It returns a
          :class:`Verdict` with one score in ``[0, 1]`` per variant; ``winner_variant_id`` is
          ``None`` on a tie (``status="tie"``) or when no variant qualifies
          (``status="no_winner"``), and ``reason`` says which. Use :func:`decide`.
        * It raises :class:`~cerver.errors.JudgeError` when it cannot judge at all (its model
          failed or answered something unreadable, its command could not run). It never
          returns a winner it did not score.
        * :meth:`check` runs before any variant does and raises
          :class:`~cerver.errors.InvalidRequest` for a judge that may not judge these
          contestants (e.g. an ``llm`` judge whose model is one of them).

    Judges are built per fan-out from a :class:`JudgeSpec` by :meth:`from_options`, after
    the spec's ``options`` were validated against the class's nested ``Options`` model (a
    :class:`~cerver.options.PluginOptions`; a judge without one takes no options). ``build``
    builds the judges a judge is made of (``composite``'s parts, a gate).
    """

    name: ClassVar[str]
    #: The model that judges, if any (for the verdict's ``judge_model``).
    model: str | None = None
    #: The options the judge was built with (set by the default :meth:`from_options`).
    options: PluginOptions = PluginOptions()

    @classmethod
    def from_options(
        cls, options: PluginOptions, *, model: str | None, build: JudgeBuilder
    ) -> Self:
        """Build the judge a request asked for, from its validated ``Options`` instance.

        The default calls ``cls()`` and sets :attr:`options`; a judge with constructor
        arguments, or one that calls ``model``, overrides it.

        Raises:
            InvalidRequest: options that validate one by one but not together.
        """
        judge = cls()
        judge.options = options
        return judge

    def check(self, contestants: Sequence[tuple[str, str]]) -> None:  # noqa: B027 - optional
        """Refuse contestants (``(harness, model)`` pairs) this judge may not judge."""

    @abstractmethod
    async def judge(self, ctx: JudgeContext) -> Verdict:
        """Score ``ctx.variants`` and pick a winner (see the class docstring)."""
