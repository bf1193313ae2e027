"""SDK harness turns replayed from recorded HTTP exchanges (``cassettes/harnesses/``).

CI replays only (pytest-recording's ``--record-mode=none``, set in ``pyproject.toml``): a
request the cassette does not hold fails the test instead of reaching the network. Auth
headers are filtered out before anything is written. See ``cassettes/README.md`` for how to
re-record: against the real providers with your keys, or against the mock upstream (how the
shipped cassettes were made: ``CERVER_CASSETTES_FROM_MOCK=1``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from cerver.retry import RetryPolicy
from cerver.testing.mock_upstream import MockUpstream, Reply
from harnesses.base import Message, TurnContext, TurnOptions, Usage

pytest.importorskip("litellm")

FROM_MOCK = os.environ.get("CERVER_CASSETTES_FROM_MOCK") == "1"
REAL_HOSTS = {"litellm": "https://api.x.ai/v1", "openai": "https://api.openai.com/v1"}
FILTERED_HEADERS = ["authorization", "x-api-key", "api-key", "cookie", "set-cookie", "host"]


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(Path(__file__).parents[2] / "cassettes" / "harnesses")


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {
        "filter_headers": FILTERED_HEADERS,
        "before_record_request": _as_real_host,
        "decode_compressed_response": True,
    }


def _as_real_host(request: Any) -> Any:
    """Recording from the mock: store the provider's real URL, so replay matches it."""
    if FROM_MOCK:
        real = urlsplit(REAL_HOSTS["openai" if "/responses" in request.uri else "litellm"])
        parts = urlsplit(request.uri)
        request.uri = urlunsplit((real.scheme, real.netloc, parts.path, parts.query, ""))
    return request


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Callable[[str], dict[str, Any]]:
    """Constructor arguments: the mock upstream when recording from it, else the provider's
    own URL (replayed from the cassette) with the key from the environment if any."""

    def build(name: str) -> dict[str, Any]:
        if FROM_MOCK:
            upstream: MockUpstream = request.getfixturevalue("mock_upstream")
            upstream.script(
                Reply(text="Recorded hello.", usage={"input_tokens": 12, "output_tokens": 3})
            )
            return {"base_url": upstream.openai_base_url, "api_key": "recording"}
        variable = {"litellm": "XAI_API_KEY", "openai": "OPENAI_API_KEY"}[name]
        base = {"openai": {"base_url": REAL_HOSTS["openai"]}}.get(name, {})
        return {**base, "api_key": os.environ.get(variable, "replayed-from-cassette")}

    return build


def _turn(model: str) -> TurnContext:
    return TurnContext("sess_c", "run_c", [], "Say hello.", model, TurnOptions(max_tokens=64))


async def _collect(harness: Any, turn: TurnContext) -> list[Any]:
    return [e async for e in harness.run(turn)]


@pytest.mark.vcr
async def test_litellm_turn_from_cassette(target: Callable[[str], dict[str, Any]]) -> None:
    from harnesses.litellm import LiteLLMHarness

    harness = LiteLLMHarness(**target("litellm"))
    harness.retry = RetryPolicy(max_attempts=1)
    events = await _collect(harness, _turn("xai/grok-4"))
    (entry,) = [e.entry for e in events if isinstance(e, Message)]
    assert entry.content and entry.provider == "xai" and entry.status == "complete"
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert usage.usage.input_tokens > 0 and usage.usage.cost_usd is not None


@pytest.mark.vcr
async def test_openai_turn_from_cassette(target: Callable[[str], dict[str, Any]]) -> None:
    from harnesses.openai import OpenAIHarness

    async with OpenAIHarness(**target("openai")) as harness:
        harness.retry = RetryPolicy(max_attempts=1)
        events = await _collect(harness, _turn("gpt-5"))
    (entry,) = [e.entry for e in events if isinstance(e, Message)]
    assert entry.content and entry.provider == "openai"
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert usage.usage.output_tokens > 0 and usage.usage.cost_usd is not None
