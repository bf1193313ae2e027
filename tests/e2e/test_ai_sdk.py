"""End to end: the Vercel AI SDK (``ai`` + ``@ai-sdk/openai`` from npm, run by Node.js) drives a
real `cerver serve` through ``/v1/chat/completions`` and ``/v1/responses`` (which the SDK sends
the whole conversation to, as input items); its models are the built-in mock upstream (a test
double). The SDK is unmodified: only its base URL, key and one header are Cerver's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from cerver.cli.setup_tools import ai_sdk_modules
from tests.e2e.conftest import bootstrap_key

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).parent / "node" / "ai_sdk_conversation.cjs"


def test_ai_sdk_runs_a_tool_loop_a_model_swap_and_sees_errors_in_its_own_class(
    server: tuple[str, Path],
) -> None:
    node, modules = shutil.which("node"), ai_sdk_modules()
    if node is None or modules is None:
        pytest.skip("the Vercel AI SDK is not installed: uv run cerver setup --only ai-sdk")
    url, data_dir = server
    key = bootstrap_key(data_dir)
    auth = {"Authorization": f"Bearer {key}"}
    sessions = [
        httpx.post(f"{url}/v2/sessions", json={"compute": None}, headers=auth, timeout=60).json()[
            "session_id"
        ]
        for _ in ("chat", "responses")
    ]
    done = subprocess.run(
        [node, str(SCRIPT), url, key, *sessions],
        env={**os.environ, "NODE_PATH": str(modules)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen_by_api = json.loads(done.stdout.strip().splitlines()[-1])
    checks = (
        ("chat", "chat.completions", ("openai", "gpt-5")),
        ("responses", "responses", ("anthropic", "claude-haiku-4-5")),
    )
    for (api, surface, swap), sid in zip(checks, sessions, strict=True):
        _check(seen_by_api[api], url, auth, sid, surface, swap)


def _check(
    seen: dict[str, Any],
    url: str,
    auth: dict[str, str],
    sid: str,
    surface: str,
    swap: tuple[str, str],
) -> None:
    # The SDK ran the app's tool when the model asked, then sent the result back.
    assert seen["ran"] == ["uptime"]
    assert seen["first"]["toolCalls"] == ["shell"] and seen["first"]["steps"] == 2
    assert seen["first"]["text"] == "[mock upstream] The tool returned: uptime: up 3 days"
    # The re-sent conversation was recognised; the model swap is a harness switch.
    assert seen["second"]["text"].startswith(f"[mock upstream] ({swap[1]})")
    assert seen["second"]["model"] == swap[1]
    assert seen["error"]["name"] == "AI_APICallError" and seen["error"]["status"] == 404
    assert "claude-haiku-4-5" in seen["error"]["message"]  # the did-you-mean

    session = httpx.get(f"{url}/v2/sessions/{sid}?transcript=true", headers=auth, timeout=60).json()
    answers = [e for e in session["transcript"] if e["role"] == "assistant"]
    assert [(e["kind"], e["harness"], e["model"]) for e in answers] == [
        ("tool_call", "anthropic", "claude-sonnet-4-5"),
        ("text", "anthropic", "claude-sonnet-4-5"),
        ("text", *swap),
    ]
    tool_results = [e for e in session["transcript"] if e["kind"] == "tool_result"]
    assert [e["metadata"].get("source") for e in tool_results] == [surface]
    assert session["metrics"]["interaction_count"] == 3
