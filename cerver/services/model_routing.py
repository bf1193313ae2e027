"""Per-turn routing policies: which model and harness write a turn, by account rules.

An account's policy (``PUT /v2/account/routing-policy``) is a list of rules, each a ``match``
and a ``route``; the first rule whose every condition holds routes the turn, else the
policy's ``default`` (if any), else the session's own harness and model. An explicit choice in
the request (``harness`` or ``model`` on ``run-llm``) always wins over the policy.

Conditions (all given ones must hold; an empty ``match`` always matches):

* ``metadata``: every key equals the session's ``metadata`` value;
* ``prompt_over_chars``: the new input is longer than this many characters;
* ``turns_over``: the session had more than this many interactions before this turn.

A routed turn routes that turn only (the session keeps its own harness and model for turns
the policy does not route), and its user entry records ``{"routed_by": {"policy", "rule"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cerver.errors import InvalidRequest, did_you_mean
from cerver.services.sessions import HarnessChoice

__all__ = ["PRESETS", "Route", "RoutingPolicy", "Rule", "RuleMatch", "parse_policy", "route_turn"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleMatch(_Strict):
    metadata: dict[str, Any] | None = None
    prompt_over_chars: int | None = Field(default=None, ge=0)
    turns_over: int | None = Field(default=None, ge=0)

    def holds(self, *, metadata: Mapping[str, Any], prompt: str, turns: int) -> bool:
        if self.metadata is not None and any(
            metadata.get(key, _MISSING) != value for key, value in self.metadata.items()
        ):
            return False
        if self.prompt_over_chars is not None and len(prompt) <= self.prompt_over_chars:
            return False
        return self.turns_over is None or turns > self.turns_over


class Route(_Strict):
    model: str | None = None
    harness: str | None = None

    @model_validator(mode="after")
    def _something(self) -> Route:
        if self.model is None and self.harness is None:
            raise ValueError('a route needs "model" and/or "harness"')
        return self


class Rule(_Strict):
    name: str = Field(min_length=1, max_length=100)
    match: RuleMatch = Field(default_factory=RuleMatch)
    route: Route


class RoutingPolicy(_Strict):
    name: str = Field(default="custom", min_length=1, max_length=100)
    rules: list[Rule] = Field(default_factory=list, max_length=100)
    default: Route | None = None


_MISSING = object()

PRESETS: dict[str, RoutingPolicy] = {
    policy.name: policy
    for policy in (
        RoutingPolicy(
            name="frugal-coder",
            rules=[
                Rule(
                    name="long-prompt",
                    match=RuleMatch(prompt_over_chars=4000),
                    route=Route(harness="anthropic", model="claude-sonnet-4-6"),
                )
            ],
            default=Route(harness="anthropic", model="claude-haiku-4-5"),
        ),
        RoutingPolicy(
            name="escalate-on-struggle",
            rules=[
                Rule(
                    name="flagged-struggling",
                    match=RuleMatch(metadata={"struggling": True}),
                    route=Route(harness="anthropic", model="claude-opus-4-6"),
                ),
                Rule(
                    name="long-session",
                    match=RuleMatch(turns_over=10),
                    route=Route(harness="anthropic", model="claude-opus-4-6"),
                ),
            ],
        ),
        RoutingPolicy(
            name="second-opinion",
            rules=[
                Rule(
                    name="second-opinion",
                    match=RuleMatch(metadata={"second_opinion": True}),
                    route=Route(harness="openai", model="gpt-5"),
                )
            ],
        ),
    )
}
"""Ready-made policies, set by name: ``{"routing_policy": "frugal-coder"}``."""


def parse_policy(value: str | Mapping[str, Any] | None) -> RoutingPolicy | None:
    """A policy from a preset name, ``{"preset": name}``, or a policy document.

    Raises:
        InvalidRequest: unknown preset (with a did-you-mean) or an invalid document (the
            validation errors name the fields).
    """
    if value is None:
        return None
    if isinstance(value, Mapping) and set(value) == {"preset"}:
        value = value["preset"]
    if isinstance(value, str):
        if value not in PRESETS:
            raise InvalidRequest(
                f"Unknown routing policy preset {value!r}.{did_you_mean(value, list(PRESETS))} "
                f"Presets: {', '.join(PRESETS)}.",
                context={"preset": value, "presets": list(PRESETS)},
            )
        return PRESETS[value]
    try:
        return RoutingPolicy.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'routing_policy'}: {err['msg']}"
            for err in exc.errors()
        )
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise InvalidRequest(
            f"Invalid routing policy: {problems}.", context={"errors": errors}
        ) from None


def route_turn(
    policy: RoutingPolicy | None,
    explicit: HarnessChoice | None,
    *,
    metadata: Mapping[str, Any],
    prompt: str,
    turns: int,
) -> tuple[HarnessChoice | None, dict[str, Any] | None]:
    """The harness choice for one turn, and what routed it (``None`` when not the policy).

    Order: the request's explicit choice, then the first matching rule, then the policy's
    default, then nothing (the session's harness and model).
    """
    if explicit is not None or policy is None:
        return explicit, None
    for rule in policy.rules:
        if rule.match.holds(metadata=metadata, prompt=prompt, turns=turns):
            return _choice(rule.route), {"policy": policy.name, "rule": rule.name}
    if policy.default is not None:
        return _choice(policy.default), {"policy": policy.name, "rule": "default"}
    return None, None


def _choice(route: Route) -> HarnessChoice:
    return HarnessChoice(route.harness, route.model)
