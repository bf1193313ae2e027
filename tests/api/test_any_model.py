"""LiteLLM and pydantic-ai sessions through the gateway, and the start-up import budget."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cerver.client import AsyncClient
from cerver.gateway import Gateway
from cerver.services.plugins import Upstreams
from cerver.testing.mock_upstream import MockUpstream, Reply


@pytest.fixture
def on_mock(gateway: Gateway, mock_upstream: MockUpstream) -> Gateway:
    """Every provider of ``gateway`` (LiteLLM's and pydantic-ai's too) on the mock upstream."""
    gateway.harnesses.upstreams = Upstreams.from_settings(gateway.settings, mock_upstream.url)
    return gateway


@pytest.mark.parametrize(
    ("harness", "model", "stored_model", "provider"),
    [
        ("grok", "grok-4", "xai/grok-4", "xai"),
        ("xai", None, "xai/grok-4", "xai"),
        ("litellm", "openai/local-llama", "openai/local-llama", "openai"),
        ("pydantic-ai", "openai:gpt-5", "openai:gpt-5", "openai"),
        ("pydantic-ai", "anthropic:claude-haiku-4-5", "anthropic:claude-haiku-4-5", "anthropic"),
    ],
)
async def test_sessions_on_any_model(
    on_mock: Gateway,
    client: AsyncClient,
    mock_upstream: MockUpstream,
    harness: str,
    model: str | None,
    stored_model: str,
    provider: str,
) -> None:
    pytest.importorskip("litellm" if harness != "pydantic-ai" else "pydantic_ai")
    fields = {"harness": harness, "compute": None, "user": "u1"}
    if model:
        fields["model"] = model
    session = await client.create_session(**fields)
    assert session["model"] == stored_model
    mock_upstream.script(Reply(text="hello", usage={"input_tokens": 10, "output_tokens": 2}))
    result = await client.run_llm(session["session_id"], "hi")
    assert result["status"] == "completed" and result["message"]["content"] == "hello"
    assert result["message"]["provider"] == provider
    rows = (await client.usage("provider"))["rows"]
    assert [r["key"] for r in rows] == [provider]


def test_the_gateway_does_not_import_litellm_or_pydantic_ai_at_start_up() -> None:
    code = (
        "import sys\n"
        "import cerver.api\n"
        "from cerver.api import create_app\n"
        "from cerver.settings import Settings\n"
        "create_app(settings=Settings(data_dir='/tmp/cerver-import-check'))\n"
        "heavy = [m for m in ('litellm', 'pydantic_ai') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
