"""The options the built-in harnesses take (``harness: {type, model, options}``).

SDK harnesses take :class:`SDKHarnessOptions` (sampling: ``temperature``, ``max_tokens``,
``reasoning`` effort) and resolve them for a turn with :func:`sampling`; a value the turn
itself sets (``run-llm``'s ``temperature``, ``max_tokens``) wins over the session's option.

CLI harnesses take :class:`CliHarnessOptions`: ``extra_args`` for the CLI, each flag checked
against the harness's allow-list (:class:`CliFlag`). The allow-list is what keeps an option
from undoing what the harness sets up: the model proxy, the permission mode, the output
format, where the CLI writes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, field_validator

from cerver.options import PluginOptions

if TYPE_CHECKING:
    from harnesses.base import TurnContext

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "CliFlag",
    "CliHarnessOptions",
    "ReasoningEffort",
    "SDKHarnessOptions",
    "Sampling",
    "sampling",
]

DEFAULT_MAX_TOKENS = 4096
"""Output tokens per model call when neither the turn nor the session's options say."""

ReasoningEffort = Literal["minimal", "low", "medium", "high"]


class SDKHarnessOptions(PluginOptions):
    """Sampling options of an SDK harness, passed to every model call of the session."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)
    reasoning: ReasoningEffort | None = Field(
        default=None, description="Reasoning effort, for models that reason."
    )


@dataclass(frozen=True, slots=True)
class Sampling:
    """What one model call of a turn is sent."""

    max_tokens: int
    temperature: float | None = None
    reasoning: ReasoningEffort | None = None


def sampling(turn: TurnContext) -> Sampling:
    """The sampling of ``turn``: the turn's own values, then the session's options."""
    options = turn.harness_options
    if not isinstance(options, SDKHarnessOptions):
        options = SDKHarnessOptions()
    temperature = turn.options.temperature
    return Sampling(
        max_tokens=turn.options.max_tokens or options.max_tokens or DEFAULT_MAX_TOKENS,
        temperature=temperature if temperature is not None else options.temperature,
        reasoning=options.reasoning,
    )


@dataclass(frozen=True, slots=True)
class CliFlag:
    """A flag a CLI harness lets ``extra_args`` pass.

    Attributes:
        values: the values it takes: a tuple of choices, a regular expression the whole value
            must match, or ``None`` for a flag that takes no value.
        replaces: the flag is one the harness sets itself; the caller's value replaces it.
    """

    values: tuple[str, ...] | str | None = None
    replaces: bool = False

    def check(self, flag: str, value: str | None) -> str | None:
        """The problem with ``value`` for ``flag``, or ``None`` when it is allowed."""
        if self.values is None:
            return f"{flag} takes no value" if value is not None else None
        if value is None:
            return f"{flag} needs a value"
        if isinstance(self.values, tuple):
            if value not in self.values:
                return f"{flag} takes one of {', '.join(self.values)}, not {value!r}"
        elif not re.fullmatch(self.values, value):
            return f"{flag} does not take {value!r}"
        return None


class CliHarnessOptions(PluginOptions):
    """Options of a CLI harness: extra command-line flags from its allow-list.

    ``extra_args`` is a list as a shell would split it: ``["--effort", "high"]`` or
    ``["--effort=high"]``. Subclasses set :attr:`allowed`.
    """

    allowed: ClassVar[Mapping[str, CliFlag]] = {}

    extra_args: list[str] = Field(default_factory=list, max_length=32)

    @field_validator("extra_args")
    @classmethod
    def _allowed(cls, args: list[str]) -> list[str]:
        for flag, value in _pairs(args, cls.allowed):
            spec = cls.allowed.get(flag)
            if spec is None:
                known = ", ".join(sorted(cls.allowed)) or "none"
                raise ValueError(f"{flag} is not an allowed flag (allowed: {known})")
            if problem := spec.check(flag, value):
                raise ValueError(problem)
        return args

    def flags(self) -> list[tuple[str, str | None]]:
        """``extra_args`` as (flag, value) pairs, in order."""
        return list(_pairs(self.extra_args, self.allowed))

    def value(self, flag: str) -> str | None:
        """The value given for ``flag`` (the last one), or ``None``."""
        found = [v for f, v in self.flags() if f == flag]
        return found[-1] if found else None

    def args(self) -> list[str]:
        """The flags to append to the command line (those the harness does not replace)."""
        out: list[str] = []
        for flag, value in self.flags():
            if not self.allowed[flag].replaces:
                out += [flag] if value is None else [flag, value]
        return out


def _pairs(args: list[str], allowed: Mapping[str, CliFlag]) -> list[tuple[str, str | None]]:
    """Split ``args`` into (flag, value): ``--f=v``, ``--f v`` (when ``--f`` takes a value)."""
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("-"):
            raise ValueError(f"{token!r} is not a flag: values follow the flag they belong to")
        flag, eq, inline = token.partition("=")
        value: str | None = inline if eq else None
        spec = allowed.get(flag)
        takes_value = spec.values is not None if spec is not None else True
        next_is_value = i + 1 < len(args) and (spec is not None or args[i + 1][:1] != "-")
        if value is None and takes_value and next_is_value:
            value = args[i + 1]
            i += 1
        pairs.append((flag, value))
        i += 1
    return pairs
