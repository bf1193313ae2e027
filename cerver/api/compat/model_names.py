"""The one grammar of ``model`` on the compatibility surfaces: ``[harness/]model``.

An OpenAI or Anthropic client names only a model; Cerver needs a harness and a model. The
grammar, tried in order:

1. ``<harness>/<model>`` where ``<harness>`` is a harness name or one of the session aliases
   (``claude`` → ``claude-code``; ``xai`` / ``grok`` → ``litellm`` with an ``xai/`` model):
   ``anthropic/claude-sonnet-4-6``, ``codex/gpt-5``, ``claude-code/claude-opus-4-1``,
   ``xai/grok-4``, ``litellm/openai/gpt-4o-mini``, ``pydantic-ai/openai:gpt-5``. The model is
   passed to that harness as written (the provider refuses a model it does not serve).
2. A bare model of a known family gets that family's default harness: ``claude-*`` →
   ``anthropic``; ``gpt-*``, ``o1*``/``o3*``/``o4*``, ``chatgpt-*``, ``codex-*`` → ``openai``;
   ``grok-*`` → ``litellm`` (``xai/grok-*``); ``gemini-*`` → ``gemini-cli``.
3. Anything else is an :class:`~cerver.errors.UnknownModel` (404) with a did-you-mean over
   the models listed by ``GET /v1/models`` and the harness names.

:func:`parse_model` is the grammar; :func:`listed_models` is what ``GET /v1/models`` lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from cerver.errors import MissingDependency, UnknownModel, UnknownPlugin, did_you_mean
from cerver.registry import model_for_alias
from cerver.services.plugins import HarnessPool
from cerver.services.sessions import HarnessChoice

__all__ = ["FAMILIES", "KNOWN_MODELS", "ModelName", "listed_models", "parse_model"]

FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("claude-", "anthropic", ""),
    ("gpt-", "openai", ""),
    ("chatgpt-", "openai", ""),
    ("codex-", "openai", ""),
    ("o1", "openai", ""),
    ("o3", "openai", ""),
    ("o4", "openai", ""),
    ("grok-", "litellm", "xai/"),
    ("gemini-", "gemini-cli", ""),
)
"""(bare model prefix, default harness, model prefix that harness needs), first match wins."""

KNOWN_MODELS: tuple[str, ...] = (
    "claude-sonnet-4-6",
    "claude-sonnet-4-5",
    "claude-opus-4-6",
    "claude-opus-4-1",
    "claude-haiku-4-5",
    "gpt-5.5",
    "gpt-5",
    "gpt-5-mini",
    "gpt-4.1-mini",
    "gpt-4o",
    "gpt-4o-mini",
    "grok-4",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
)
"""Bare model names ``GET /v1/models`` lists and did-you-mean suggests. Not a limit: any
model of a known family, or any ``<harness>/<model>``, is accepted."""


@dataclass(frozen=True, slots=True)
class ModelName:
    """A parsed ``model``: the harness choice, and the name as the client wrote it."""

    requested: str
    choice: HarnessChoice


def parse_model(model: str, harnesses: HarnessPool) -> ModelName:
    """Resolve ``model`` by the grammar above.

    Raises:
        UnknownModel: neither a ``<harness>/`` prefix nor a known family; the message names
            the closest known model or harness and the grammar. ``context["param"]`` is
            ``"model"``.
    """
    name = model.strip()
    prefix, slash, rest = name.partition("/")
    if slash and rest:
        try:
            harnesses.canonical(prefix)
        except UnknownPlugin:
            pass
        else:
            return ModelName(model, HarnessChoice(prefix, model_for_alias(prefix, rest)))
    if not slash:
        for family, harness, model_prefix in FAMILIES:
            if name.startswith(family):
                return ModelName(model, HarnessChoice(harness, f"{model_prefix}{name}"))
    raise _unknown(model, prefix if slash else None, harnesses)


def listed_models(harnesses: HarnessPool) -> list[str]:
    """The model ids ``GET /v1/models`` lists: the known bare names, then
    ``<harness>/<default model>`` for every harness."""
    ids = list(KNOWN_MODELS)
    for name in harnesses.registry.names():
        try:
            default = harnesses.harness_class(name).default_model
        except MissingDependency:  # a plug-in whose module needs a missing SDK
            continue
        ids.append(f"{name}/{default}")
    return ids


def _unknown(model: str, prefix: str | None, harnesses: HarnessPool) -> UnknownModel:
    known_harnesses = harnesses.registry.names()
    if prefix is not None:
        hint = did_you_mean(prefix, known_harnesses)
        what = f"Unknown harness {prefix!r} in model {model!r}.{hint}"
    else:
        hint = did_you_mean(model, [*KNOWN_MODELS, *known_harnesses])
        what = f"Unknown model {model!r}.{hint}"
    return UnknownModel(
        f"{what} Name a model as '[harness/]model': a model of a known family "
        "(claude-*, gpt-*, o3*, grok-*, gemini-*…) or '<harness>/<model>' with a harness of "
        f"{', '.join(known_harnesses)} (any LiteLLM model as 'litellm/<provider>/<model>'). "
        "GET /v1/models lists examples.",
        context={"param": "model", "model": model},
    )
