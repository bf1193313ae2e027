"""An unmodified third-party framework on Cerver: pydantic-ai's ``OpenAIChatModel`` with an
``OpenAIProvider`` on Cerver's base URL, models served by the mock upstream (a test double)."""

from __future__ import annotations

import httpx
import pytest

from cerver.api import create_app
from cerver.client import AsyncClient
from cerver.gateway import Gateway
from cerver.testing.mock_upstream import MockUpstream, Reply
from tests.conftest import ADMIN_KEY

pydantic_ai = pytest.importorskip("pydantic_ai", reason="pip install pydantic-ai")


async def test_two_turn_conversation_with_a_function_tool(
    gateway: Gateway, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    import openai
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    sid = (await client.create_session(user="u-pai", compute=None))["session_id"]
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with httpx.AsyncClient(transport=transport) as http:
        openai_client = openai.AsyncOpenAI(
            base_url="http://cerver.test/v1",
            api_key=ADMIN_KEY,
            http_client=http,
            default_headers={"X-Cerver-Session-Id": sid},
        )
        model = OpenAIChatModel(
            "claude-sonnet-4-5", provider=OpenAIProvider(openai_client=openai_client)
        )
        agent = pydantic_ai.Agent(model, instructions="You track orders.")
        looked_up: list[str] = []

        @agent.tool_plain
        def lookup_order(order_id: str) -> str:
            """Look up an order by id."""
            looked_up.append(order_id)
            return f"order {order_id} shipped on Monday"

        mock_upstream.script(
            Reply(tool_calls=[{"name": "lookup_order", "arguments": {"order_id": "42"}}])
        )
        first = await agent.run("Where is order 42?")
        assert looked_up == ["42"]
        assert "order 42 shipped on Monday" in first.output

        mock_upstream.script(Reply(text="It left on Monday, as I said.", model="gpt-5"))
        model_2 = OpenAIChatModel("gpt-5", provider=OpenAIProvider(openai_client=openai_client))
        second = await agent.run(
            "When did it leave?", message_history=first.all_messages(), model=model_2
        )
        assert second.output == "It left on Monday, as I said."
        # The swapped-in model got the app's tool call and result replayed.
        items = mock_upstream.requests[-1]["body"]["input"]
        kinds = [item.get("type", "message") for item in items]
        assert "function_call" in kinds and "function_call_output" in kinds

    session = await client.get_session(sid, transcript=True)
    turns = [e for e in session["transcript"] if e["role"] != "event"]
    assert [(e["role"], e["kind"]) for e in turns] == [
        ("user", "text"),
        ("assistant", "tool_call"),
        ("tool", "tool_result"),
        ("assistant", "text"),
        ("user", "text"),
        ("assistant", "text"),
    ]
    answers = [e for e in turns if e["role"] == "assistant"]
    assert [(e["harness"], e["model"]) for e in answers] == [
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-sonnet-4-5"),
        ("openai", "gpt-5"),
    ]
    for answer in answers:
        assert answer["usage"]["output_tokens"] > 0 and answer["usage"]["cost_usd"] > 0
    assert turns[2]["metadata"]["source"] == "chat.completions"
    assert session["transcript"][0]["kind"] == "harness_switched"  # claude-sonnet-4-6 -> 4-5
    assert (session["harness"], session["model"]) == ("openai", "gpt-5")
