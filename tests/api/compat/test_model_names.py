"""The ``[harness/]model`` grammar of the compatibility surfaces."""

from __future__ import annotations

import pytest

from cerver.api.compat.model_names import listed_models, parse_model
from cerver.errors import UnknownModel
from cerver.services.plugins import HarnessPool, Upstreams


@pytest.fixture(scope="module")
def harnesses() -> HarnessPool:
    """Harness names only: nothing here builds a harness or calls a model."""
    return HarnessPool(Upstreams({}, mock=True))


@pytest.mark.parametrize(
    ("model", "harness", "resolved"),
    [
        ("claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"),
        ("anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"),
        ("gpt-5", "openai", "gpt-5"),
        ("o3-mini", "openai", "o3-mini"),
        ("codex/gpt-5", "codex", "gpt-5"),
        ("claude-code/claude-opus-4-1", "claude-code", "claude-opus-4-1"),
        ("claude/claude-opus-4-1", "claude-code", "claude-opus-4-1"),
        ("xai/grok-4", "litellm", "xai/grok-4"),
        ("grok/grok-4", "litellm", "xai/grok-4"),
        ("grok-4", "litellm", "xai/grok-4"),
        ("litellm/openai/gpt-4o-mini", "litellm", "openai/gpt-4o-mini"),
        ("pydantic-ai/openai:gpt-5", "pydantic-ai", "openai:gpt-5"),
    ],
)
def test_the_grammar_resolves_to_a_harness_and_its_model(
    harnesses: HarnessPool, model: str, harness: str, resolved: str
) -> None:
    parsed = parse_model(model, harnesses)
    assert parsed.requested == model
    assert harnesses.canonical(parsed.choice.name or "") == harness
    assert parsed.choice.model == resolved


@pytest.mark.parametrize(
    ("model", "hint"),
    [
        ("claud-sonnet-4-5", "Did you mean 'claude-sonnet-4-5'?"),
        ("antropic/claude-sonnet-4-5", "Did you mean 'anthropic'?"),
        ("mistral-large", "Name a model as '[harness/]model'"),
        ("/gpt-5", "Name a model as '[harness/]model'"),
    ],
)
def test_unknown_names_suggest_the_closest(harnesses: HarnessPool, model: str, hint: str) -> None:
    with pytest.raises(UnknownModel) as exc:
        parse_model(model, harnesses)
    assert hint in exc.value.message
    assert exc.value.context == {"param": "model", "model": model}


def test_every_listed_model_parses(harnesses: HarnessPool) -> None:
    listed = listed_models(harnesses)
    assert "anthropic/claude-sonnet-4-6" in listed and "claude-sonnet-4-5" in listed
    for model in listed:
        parse_model(model, harnesses)
