"""Per-turn routing policies: first match wins, explicit choice wins, presets, clearing."""

from __future__ import annotations

import httpx
import pytest

from cerver.client import AsyncClient
from cerver.testing.mock_upstream import MockUpstream

POLICY = {
    "name": "test-policy",
    "rules": [
        {
            "name": "vip",
            "match": {"metadata": {"tier": "vip"}},
            "route": {"model": "claude-opus-4-6"},
        },
        {
            "name": "long",
            "match": {"prompt_over_chars": 20},
            "route": {"harness": "openai", "model": "gpt-5"},
        },
        {"name": "later", "match": {"turns_over": 1}, "route": {"model": "claude-haiku-4-5"}},
    ],
}


def last_user_entry(entries: list[dict]) -> dict:
    return [e for e in entries if e["role"] == "user"][-1]


async def test_first_matching_rule_routes_and_is_recorded(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    stored = await client.set_routing_policy(POLICY)
    assert [r["name"] for r in stored["routing_policy"]["rules"]] == ["vip", "long", "later"]
    sid = (await client.create_session(compute=None, metadata={"tier": "vip"}))["session_id"]

    # vip and long both match: the first wins.
    result = await client.run_llm(sid, "a prompt longer than twenty characters")
    assert (result["harness"], result["model"]) == ("anthropic", "claude-opus-4-6")
    entries = (await client.messages(sid))["messages"]
    assert last_user_entry(entries)["metadata"]["routed_by"] == {
        "policy": "test-policy",
        "rule": "vip",
    }
    assert mock_upstream.requests[-1]["body"]["model"] == "claude-opus-4-6"
    # The session keeps its own choice for turns the policy does not route.
    session = await client.get_session(sid)
    assert (session["harness"], session["model"]) == ("anthropic", "claude-sonnet-4-6")


async def test_conditions_on_prompt_length_and_turn_count(client: AsyncClient) -> None:
    await client.set_routing_policy(POLICY)
    sid = (await client.create_session(compute=None))["session_id"]
    first = await client.run_llm(sid, "short")
    assert first["model"] == "claude-sonnet-4-6"  # nothing matched: the session's default
    long = await client.run_llm(sid, "x" * 21)
    assert (long["harness"], long["model"]) == ("openai", "gpt-5")
    third = await client.run_llm(sid, "short")  # 2 interactions before it: turns_over 1
    assert third["model"] == "claude-haiku-4-5"
    entries = (await client.messages(sid))["messages"]
    rules = [e["metadata"].get("routed_by", {}).get("rule") for e in entries if e["role"] == "user"]
    assert rules == [None, "long", "later"]


async def test_an_explicit_choice_in_the_request_wins(client: AsyncClient) -> None:
    await client.set_routing_policy(POLICY)
    sid = (await client.create_session(compute=None, metadata={"tier": "vip"}))["session_id"]
    result = await client.run_llm(sid, "hello", model="claude-haiku-4-5")
    assert result["model"] == "claude-haiku-4-5"
    entries = (await client.messages(sid))["messages"]
    assert "routed_by" not in last_user_entry(entries)["metadata"]


async def test_presets_and_clearing(client: AsyncClient, http: httpx.AsyncClient) -> None:
    stored = await client.set_routing_policy("frugal-coder")
    assert stored["routing_policy"]["name"] == "frugal-coder"
    assert set(stored["presets"]) == {"frugal-coder", "escalate-on-struggle", "second-opinion"}
    sid = (await client.create_session(compute=None))["session_id"]
    assert (await client.run_llm(sid, "tiny fix"))["model"] == "claude-haiku-4-5"  # default
    entries = (await client.messages(sid))["messages"]
    assert last_user_entry(entries)["metadata"]["routed_by"]["rule"] == "default"

    await client.set_routing_policy({"preset": "second-opinion"})
    assert (await client.routing_policy())["routing_policy"]["name"] == "second-opinion"

    cleared = await http.put("/v2/account/routing-policy", json={"routing_policy": None})
    assert cleared.status_code == 200 and cleared.json()["routing_policy"] is None
    assert (await client.run_llm(sid, "tiny fix"))["model"] == "claude-sonnet-4-6"


@pytest.mark.parametrize(
    ("policy", "fragment"),
    [
        ("frugal-codr", "Did you mean 'frugal-coder'"),
        ({"rules": [{"name": "r", "route": {}}]}, "route"),
        ({"rules": [{"name": "r", "match": {"colour": "red"}, "route": {"model": "m"}}]}, "colour"),
    ],
)
async def test_invalid_policies_name_the_problem(
    http: httpx.AsyncClient, policy: object, fragment: str
) -> None:
    response = await http.put("/v2/account/routing-policy", json={"routing_policy": policy})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert fragment in response.json()["detail"]
