"""Routing policy rules as pure functions: matching, order, explicit choice, presets."""

from __future__ import annotations

import pytest

from cerver.errors import InvalidRequest
from cerver.services.model_routing import PRESETS, parse_policy, route_turn
from cerver.services.sessions import HarnessChoice


def route(policy: object, *, explicit: HarnessChoice | None = None, **turn: object):
    values = {"metadata": {}, "prompt": "hi", "turns": 0, **turn}
    return route_turn(parse_policy(policy), explicit, **values)  # type: ignore[arg-type]


POLICY = {
    "name": "p",
    "rules": [
        {
            "name": "both",
            "match": {"metadata": {"a": 1}, "turns_over": 2},
            "route": {"model": "m1"},
        },
        {"name": "any", "match": {}, "route": {"harness": "openai"}},
    ],
}


def test_all_conditions_of_a_rule_must_hold() -> None:
    choice, routed = route(POLICY, metadata={"a": 1}, turns=3)
    assert (choice, routed) == (HarnessChoice(None, "m1"), {"policy": "p", "rule": "both"})
    choice, routed = route(POLICY, metadata={"a": 1}, turns=2)  # turns_over is strict
    assert routed == {"policy": "p", "rule": "any"} and choice == HarnessChoice("openai", None)


def test_explicit_choice_and_no_policy_route_nothing() -> None:
    explicit = HarnessChoice("anthropic", "x")
    assert route(POLICY, explicit=explicit) == (explicit, None)
    assert route(None) == (None, None)
    assert route({"rules": []}) == (None, None)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_policies(name: str) -> None:
    assert parse_policy(name) is PRESETS[name]
    assert parse_policy({"preset": name}) is PRESETS[name]


def test_frugal_coder_escalates_long_prompts() -> None:
    assert route("frugal-coder", prompt="x" * 4001)[1] == {
        "policy": "frugal-coder",
        "rule": "long-prompt",
    }
    assert route("frugal-coder", prompt="short")[0] == HarnessChoice(
        "anthropic", "claude-haiku-4-5"
    )


def test_unknown_preset_suggests_the_closest() -> None:
    with pytest.raises(InvalidRequest, match="Did you mean 'second-opinion'"):
        parse_policy("second-opinon")
