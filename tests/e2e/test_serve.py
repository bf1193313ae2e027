"""End to end: the real `cerver serve` process, driven over HTTP with the blocking client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cerver.client import Client
from cerver.errors import NotFound
from tests.e2e.conftest import bootstrap_key

pytestmark = pytest.mark.e2e


def test_serve_bootstraps_a_key_and_runs_the_main_job(server: tuple[str, Path]) -> None:
    url, data_dir = server
    api_key = bootstrap_key(data_dir)
    assert httpx.get(f"{url}/healthz").json()["upstream"] == "mock"
    assert (data_dir / "cerver.db").exists()

    with Client(url, api_key) as client:
        session = client.create_session(user="user_4f3a", harness="anthropic")
        sid = session["session_id"]
        first = client.run_llm(sid, "run `echo from-e2e > proof.txt && cat proof.txt`")
        assert "from-e2e" in first["message"]["content"]
        assert first["message"]["content"].startswith("[mock upstream]")
        events = list(client.stream_llm(sid, "and now?", harness="openai", model="gpt-5"))
        assert events[0].event == "turn.started" and events[-1].event == "turn.completed"
        assert "from-e2e" in events[-1].data["message"]["content"]
        stored = client.get_session(sid, transcript=True)
        assert [e["seq"] for e in stored["transcript"]] == list(range(1, 8))
        assert stored["metrics"]["interaction_count"] == 2
        assert client.read_file(sid, "proof.txt")["content"] == "from-e2e\n"
        listed = client.list_sessions(user="user_4f3a")
        assert [s["session_id"] for s in listed["sessions"]] == [sid]
        client.delete_session(sid)
        with pytest.raises(NotFound):
            client.get_session(sid)

    unauthenticated = httpx.get(f"{url}/v2/sessions")
    assert unauthenticated.status_code == 401


def test_cli_lists_and_shows_sessions(server: tuple[str, Path]) -> None:
    url, data_dir = server
    api_key = bootstrap_key(data_dir)
    with Client(url, api_key) as client:
        sid = client.create_session(user="cli-user", compute=None)["session_id"]
        client.append_input(sid, "hello from the cli test")
    env = {**os.environ, "CERVER_URL": url, "CERVER_API_KEY": api_key, "COLUMNS": "200"}
    listed = subprocess.run(
        [sys.executable, "-m", "cerver", "sessions", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert sid in listed.stdout and "cli-user" in listed.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "cerver", "sessions", "show", sid],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "hello from the cli test" in shown.stdout
