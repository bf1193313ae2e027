"""Name → plug-in class resolution through lazy loaders.

Every plug-in kind (harness, compute, judge) has one :class:`Registry`: a dict of names to
``"module:Class"`` strings, seed aliases, and the entry-point group third-party packages use to
add their own. Nothing is imported until a name is resolved, so optional SDKs never load at
start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from cerver.errors import MissingDependency, UnknownPlugin, did_you_mean
from cerver.options import PluginOptions, validate_options

__all__ = [
    "ALIAS_MODEL_PREFIXES",
    "Registry",
    "compute_registry",
    "harness_registry",
    "judge_registry",
    "model_for_alias",
]

T = TypeVar("T")


class Registry(Generic[T]):
    """Resolves plug-in names (kebab-case) to classes.

    Args:
        kind: what the registry holds, used in error messages ("harness").
        builtins: name -> ``"module:Class"`` for the plug-ins shipped with Cerver.
        aliases: alternative names (the seed's ``claude`` -> ``claude-code``).
        group: the entry-point group scanned for third-party plug-ins.
        extras: name -> the ``cerver[extra]`` that installs a plug-in's optional SDK.
    """

    def __init__(
        self,
        kind: str,
        builtins: Mapping[str, str],
        *,
        aliases: Mapping[str, str] | None = None,
        group: str,
        extras: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self._builtins = dict(builtins)
        self._aliases = dict(aliases or {})
        self._group = group
        self._extras = dict(extras or {})
        self.reset()

    def reset(self) -> None:
        """Forget registrations made at run time and classes already loaded (for tests)."""
        self._targets: dict[str, str | type[T]] = dict(self._builtins)
        self._loaded: dict[str, type[T]] = {}
        self._entry_points_scanned = False

    def register(self, name: str, target: str | type[T]) -> None:
        """Add or replace a plug-in: a class or a ``"module:Class"`` string."""
        self._targets[name] = target
        self._loaded.pop(name, None)

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases.

        Raises:
            UnknownPlugin: no plug-in has that name; the message suggests the closest one.
        """
        name = self._aliases.get(name, name)
        if name not in self._targets:
            self._scan_entry_points()
        if name not in self._targets:
            known = sorted(self._targets)
            raise UnknownPlugin(
                f"Unknown {self.kind} {name!r}.{did_you_mean(name, [*known, *self._aliases])} "
                f"Known: {', '.join(known)}.",
                context={"kind": self.kind, "name": name, "known": known},
            )
        return name

    def names(self) -> list[str]:
        self._scan_entry_points()
        return sorted(self._targets)

    def load(self, name: str) -> type[T]:
        """Import and return the class registered under ``name`` (or an alias).

        Raises:
            UnknownPlugin: no such name.
            MissingDependency: the plug-in's optional SDK is not installed.
        """
        name = self.canonical(name)
        if name in self._loaded:
            return self._loaded[name]
        target = self._targets[name]
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name and module_name.startswith(exc.name):
                    raise
                raise self.missing(name, exc.name or "?") from exc
            target = getattr(module, attr)
        self._loaded[name] = target
        return target

    def options(self, name: str, raw: Mapping[str, Any] | None) -> PluginOptions:
        """``raw`` validated against the ``Options`` of the plug-in ``name`` (or an alias).

        Raises:
            UnknownPlugin / MissingDependency: as :meth:`load`.
            InvalidRequest: a bad option; the message names the field and the plug-in.
        """
        return validate_options(self.kind, self.canonical(name), self.load(name), raw)

    def extra(self, name: str) -> str | None:
        """The ``cerver[extra]`` that installs ``name``'s optional SDK, if it has one."""
        return self._extras.get(name)

    def missing(self, name: str, module: str) -> MissingDependency:
        """The error for a plug-in whose optional SDK (``module``) is not installed."""
        extra = self._extras.get(name)
        install = f"pip install 'cerver[{extra}]'" if extra else f"pip install {module}"
        return MissingDependency(
            f"The {self.kind} {name!r} needs the package {module!r}, which is not installed. "
            f"Install it with: {install}",
            context={"kind": self.kind, "name": name, "missing": module},
        )

    def _scan_entry_points(self) -> None:
        if self._entry_points_scanned:
            return
        self._entry_points_scanned = True
        for ep in entry_points(group=self._group):
            self._targets.setdefault(ep.name, ep.value)


harness_registry: Registry = Registry(
    "harness",
    {
        "anthropic": "harnesses.anthropic:AnthropicHarness",
        "openai": "harnesses.openai:OpenAIHarness",
        "claude-code": "harnesses.claude_code:ClaudeCodeHarness",
        "codex": "harnesses.codex:CodexHarness",
        "gemini-cli": "harnesses.gemini_cli:GeminiCliHarness",
        "litellm": "harnesses.litellm:LiteLLMHarness",
        "pydantic-ai": "harnesses.pydantic_ai:PydanticAIHarness",
    },
    aliases={"claude": "claude-code", "grok": "litellm", "xai": "litellm"},
    group="cerver.harnesses",
    extras={"litellm": "litellm", "pydantic-ai": "pydantic-ai"},
)

ALIAS_MODEL_PREFIXES = {"grok": "xai/", "xai": "xai/"}
"""Seed aliases that name a provider too: ``{"harness": "grok", "model": "grok-4"}`` means
LiteLLM's ``xai/grok-4``."""


def model_for_alias(name: str | None, model: str) -> str:
    """``model`` as the aliased harness names it (``grok`` + ``grok-4`` → ``xai/grok-4``)."""
    prefix = ALIAS_MODEL_PREFIXES.get(name or "")
    return f"{prefix}{model}" if prefix and not model.startswith(prefix) else model


compute_registry: Registry = Registry(
    "compute",
    {
        "local": "compute.local:LocalCompute",
        "relay": "compute.relay:RelayCompute",
        "e2b": "compute.e2b:E2BCompute",
        "modal": "compute.modal:ModalCompute",
        "daytona": "compute.daytona:DaytonaCompute",
        "vercel": "compute.vercel:VercelCompute",
    },
    group="cerver.compute",
    extras={"e2b": "e2b", "modal": "modal", "daytona": "daytona", "vercel": "vercel"},
)

judge_registry: Registry = Registry(
    "judge",
    {
        "cheapest": "judges.cheapest:CheapestJudge",
        "composite": "judges.composite:CompositeJudge",
        "consensus": "judges.consensus:ConsensusJudge",
        "fastest": "judges.fastest:FastestJudge",
        "llm": "judges.llm:LLMJudge",
        "tests": "judges.tests:TestsJudge",
    },
    group="cerver.judges",
)
