"""Plug-in options through the API: validated when the request arrives, stored, and handed to
the plug-in; a bad one is a 400 that names the field and the plug-in and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from cerver.registry import harness_registry
from cerver.testing.mock_upstream import MockUpstream, Reply
from tests.plugin_dist import install_plugin


async def _session(http: httpx.AsyncClient, harness: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/v2/sessions", json={"harness": harness, "compute": None})
    assert response.status_code == 201, response.text
    return response.json()


async def _count(http: httpx.AsyncClient) -> int:
    return len((await http.get("/v2/sessions")).json()["sessions"])


def _assert_names(response: httpx.Response, field: str, plugin: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "invalid_request"
    assert (body["context"]["field"], body["context"]["plugin"]) == (field, plugin)
    assert f"'{field}'" in body["detail"] and f"'{plugin}'" in body["detail"]


async def test_session_options_reach_the_model_call(
    http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    options = {"temperature": 0.25, "max_tokens": 222}
    session = await _session(http, {"type": "anthropic", "options": options})
    assert session["harness_options"] == options

    mock_upstream.script(Reply(text="ok"))
    turn = await http.post(f"/v2/sessions/{session['session_id']}/run-llm", json={"input": "hi"})

    assert turn.status_code == 200, turn.text
    (request,) = mock_upstream.requests
    assert (request["body"]["temperature"], request["body"]["max_tokens"]) == (0.25, 222)


async def test_a_bad_option_is_a_400_and_no_session_is_created(http: httpx.AsyncClient) -> None:
    before = await _count(http)
    response = await http.post(
        "/v2/sessions",
        json={"harness": {"type": "openai", "options": {"temprature": 0.2}}, "compute": None},
    )

    _assert_names(response, "temprature", "openai")
    assert "Did you mean 'temperature'" in response.json()["detail"]
    assert await _count(http) == before


async def test_a_bad_option_on_a_turn_leaves_the_transcript_unchanged(
    http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    session = await _session(http, {"type": "anthropic"})
    sid = session["session_id"]
    response = await http.post(
        f"/v2/sessions/{sid}/run-llm",
        json={"input": "hi", "harness": {"type": "claude-code", "options": {"extra_args": ["-x"]}}},
    )

    _assert_names(response, "extra_args", "claude-code")
    assert (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"] == []
    assert not mock_upstream.requests
    after = (await http.get(f"/v2/sessions/{sid}")).json()
    assert (after["harness"], after["harness_options"]) == ("anthropic", {})


async def test_a_new_harness_does_not_inherit_the_old_one_s_options(
    http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    session = await _session(http, {"type": "anthropic", "options": {"temperature": 0.5}})
    sid = session["session_id"]
    mock_upstream.script(Reply(text="ok"))
    turn = await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "hi", "harness": "openai"})

    assert turn.status_code == 200, turn.text
    (request,) = mock_upstream.requests
    assert "temperature" not in request["body"]
    assert (await http.get(f"/v2/sessions/{sid}")).json()["harness_options"] == {}


async def test_options_given_with_a_turn_are_kept_for_the_next(
    http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await _session(http, {"type": "openai"}))["session_id"]
    spec = {"type": "openai", "options": {"max_tokens": 77}}
    mock_upstream.script(Reply(text="one"), Reply(text="two"))
    await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "a", "harness": spec})
    await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "b"})

    assert [r["body"]["max_output_tokens"] for r in mock_upstream.requests] == [77, 77]
    assert (await http.get(f"/v2/sessions/{sid}")).json()["harness_options"] == {"max_tokens": 77}


async def test_a_bad_variant_option_refuses_the_fan_out(http: httpx.AsyncClient) -> None:
    before = await _count(http)
    response = await http.post(
        "/v2/fanouts",
        json={
            "input": "hi",
            "variants": [
                {"harness": "anthropic", "model": "m1"},
                {"harness": {"type": "openai", "options": {"reasoning": "max"}}, "model": "m2"},
            ],
            "judge": {"type": "fastest"},
        },
    )

    _assert_names(response, "reasoning", "openai")
    assert await _count(http) == before


async def test_a_bad_judge_option_refuses_the_fan_out(http: httpx.AsyncClient) -> None:
    before = await _count(http)
    response = await http.post(
        "/v2/fanouts",
        json={
            "input": "hi",
            "variants": [{"harness": "anthropic", "model": "m1"}],
            "judge": {"type": "tests", "options": {"command": "pytest", "timeout_s": -1}},
        },
    )

    _assert_names(response, "timeout_s", "tests")
    assert await _count(http) == before


async def test_switching_harness_validates_and_keeps_the_new_options(
    http: httpx.AsyncClient,
) -> None:
    sid = (await _session(http, {"type": "anthropic", "options": {"temperature": 0.1}}))[
        "session_id"
    ]
    bad = await http.post(
        f"/v2/sessions/{sid}/harness",
        json={"harness": {"type": "codex", "options": {"extra_args": ["-c", "model=x"]}}},
    )
    _assert_names(bad, "extra_args", "codex")
    assert (await http.get(f"/v2/sessions/{sid}")).json()["harness_options"] == {"temperature": 0.1}

    spec = {"type": "openai", "options": {"reasoning": "high"}}
    switched = await http.post(f"/v2/sessions/{sid}/harness", json={"harness": spec})

    assert switched.status_code == 200, switched.text
    assert (switched.json()["harness"], switched.json()["harness_options"]) == (
        "openai",
        {"reasoning": "high"},
    )


ECHO_HARNESS = '''
    from typing import Any, ClassVar

    from cerver.options import PluginOptions
    from cerver.types import Entry
    from harnesses.base import Harness, Message


    class EchoHarness(Harness):
        """A third-party harness that answers with its options (a test double)."""

        name: ClassVar[str] = "echo"
        provider: ClassVar[str] = "anthropic"
        default_model: ClassVar[str] = "echo-1"

        class Options(PluginOptions):
            greeting: str = "hello"
            times: int = 1

        def __init__(self, **upstream: Any) -> None:
            del upstream

        async def run(self, turn):
            options = turn.harness_options
            text = " ".join([options.greeting] * options.times)
            yield Message(Entry(role="assistant", content=text))
'''


@pytest.fixture
def echo_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(
        tmp_path,
        monkeypatch,
        harness_registry,
        group="cerver.harnesses",
        name="echo",
        module="cerver_echo_harness",
        target="EchoHarness",
        source=ECHO_HARNESS,
    )


async def test_an_entry_point_harness_receives_its_options(
    echo_harness: None, http: httpx.AsyncClient
) -> None:
    spec = {"type": "echo", "options": {"greeting": "hi", "times": 2}}
    sid = (await _session(http, spec))["session_id"]

    turn = await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "?"})

    assert turn.status_code == 200, turn.text
    assert turn.json()["message"]["content"] == "hi hi"
    bad = await http.post(
        "/v2/sessions", json={"harness": {"type": "echo", "options": {"times": "x"}}}
    )
    _assert_names(bad, "times", "echo")
