"""Typed options for plug-ins: what a request may pass to one harness, compute or judge.

A plug-in class declares what it accepts as a nested ``Options`` model::

    class E2BCompute(Compute):
        class Options(PluginOptions):
            template: str | None = None

A session's ``harness: {type, model, options}``, a fan-out variant, ``compute: {provider,
options}`` and ``judge: {type, model, options}`` are validated against that model when the
request arrives (:func:`validate_options`): an unknown field or a bad value is an
:class:`~cerver.errors.InvalidRequest` naming the field and the plug-in, raised before
anything is stored. The validated instance is what reaches the plug-in (``TurnContext.
harness_options``, ``SandboxSpec.options``, the judge's ``from_options``). A plug-in that declares
no ``Options`` takes none.

Gateway-wide settings of a plug-in (an E2B template every session gets, a default image) are
not options: they come from the environment through the plug-in's own settings model,
:func:`plugin_settings`, by one convention, ``CERVER_<PLUGIN>_<FIELD>``.

This module is part of the kernel: plug-ins import it; it imports only pydantic and
:mod:`cerver.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from cerver.errors import InvalidRequest, did_you_mean

__all__ = [
    "PluginOptions",
    "PluginSettings",
    "options_model",
    "plugin_settings",
    "settings_prefix",
    "validate_options",
]

S = TypeVar("S", bound="PluginSettings")


class PluginOptions(BaseModel):
    """Base of every plug-in's ``Options``: immutable, and unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PluginSettings(BaseSettings):
    """Base of a plug-in's gateway-wide settings; read with :func:`plugin_settings`."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)


def options_model(plugin: type) -> type[PluginOptions]:
    """The ``Options`` model ``plugin`` declares, or :class:`PluginOptions` (no fields)."""
    declared = getattr(plugin, "Options", None)
    if isinstance(declared, type) and issubclass(declared, BaseModel):
        return declared  # type: ignore[return-value]
    return PluginOptions


def validate_options(
    kind: str, name: str, plugin: type, raw: Mapping[str, Any] | BaseModel | None
) -> PluginOptions:
    """``raw`` validated against ``plugin``'s ``Options``.

    Args:
        kind: the plug-in kind, for the message (``harness``, ``compute``, ``judge``).
        name: the plug-in's registry name, for the message.
        plugin: the plug-in class.
        raw: the request's ``options`` (or an instance already validated).

    Raises:
        InvalidRequest: a field is unknown or has a bad value; the message names the field,
            the plug-in and the fields it accepts, ``context`` has them too.
    """
    model = options_model(plugin)
    if isinstance(raw, model):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump(exclude_unset=True)
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as exc:
        raise _invalid(kind, name, model, exc) from None


def _invalid(kind: str, name: str, model: type[BaseModel], exc: ValidationError) -> InvalidRequest:
    accepted = sorted(model.model_fields)
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "options"
        unknown = error["type"] == "extra_forbidden"
        problem = "not an option it takes" if unknown else error["msg"]
        problem = problem.removeprefix("Value error, ")
        problems.append({"field": field, "problem": problem})
    first = problems[0]
    hint = did_you_mean(first["field"], accepted) if first["problem"].startswith("not an") else ""
    hint += f" It accepts: {', '.join(accepted)}." if accepted else " It takes no options."
    return InvalidRequest(
        f"Invalid option {first['field']!r} for the {kind} {name!r}: {first['problem']}.{hint}",
        context={
            "kind": kind,
            "plugin": name,
            "field": first["field"],
            "errors": problems,
            "accepted": accepted,
        },
    )


def settings_prefix(name: str) -> str:
    """The environment prefix of ``name``'s settings: ``e2b`` → ``CERVER_E2B_``."""
    return "CERVER_" + name.upper().replace("-", "_") + "_"


def plugin_settings(name: str, model: type[S], **overrides: Any) -> S:
    """``model`` read from the ``CERVER_<NAME>_*`` environment variables.

    ``CERVER_E2B_TEMPLATE=my-template`` sets the field ``template`` of the ``e2b`` compute's
    settings. ``overrides`` (constructor arguments) win over the environment.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    return model(_env_prefix=settings_prefix(name), **given)
