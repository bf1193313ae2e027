"""MockUpstream's thread server and the foreground ``serve``."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from cerver.testing.mock_upstream import MockState, MockUpstream, Reply


def test_start_is_fast_and_urls_agree() -> None:
    started = time.perf_counter()
    upstream = MockUpstream().start()
    try:
        assert time.perf_counter() - started < 0.5
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", upstream.url)
        assert upstream.anthropic_base_url == upstream.url
        assert upstream.openai_base_url == upstream.url + "/v1"
        assert httpx.get(upstream.url + "/_mock/health").json()["status"] == "ok"
        with pytest.raises(RuntimeError, match="already running"):
            upstream.start()
    finally:
        upstream.stop()


def test_stop_releases_the_port_and_is_idempotent() -> None:
    upstream = MockUpstream().start()
    port = int(upstream.url.rsplit(":", 1)[1])
    upstream.stop()
    upstream.stop()
    with pytest.raises(RuntimeError, match="not running"):
        _ = upstream.url
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    with MockUpstream(port=port) as again:  # the port can be bound again at once
        assert again.url.endswith(f":{port}")


def test_state_outlives_a_restart() -> None:
    state = MockState()
    with MockUpstream(state) as upstream:
        upstream.script(Reply(text="kept"), Reply(text="for later"))
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        httpx.post(upstream.openai_base_url + "/chat/completions", json=body)
    with MockUpstream(state) as upstream:
        assert [r.text for r in upstream.state.pending] == ["for later"]
        assert len(upstream.requests) == 1


async def test_async_context_manager() -> None:
    async with MockUpstream() as upstream, httpx.AsyncClient() as http:
        response = await http.get(upstream.url + "/_mock/health")
        assert response.status_code == 200


def test_port_in_use_is_an_error() -> None:
    with MockUpstream() as upstream, pytest.raises(OSError):
        MockUpstream(port=int(upstream.url.rsplit(":", 1)[1])).start()


def test_serve_prints_a_test_double_banner() -> None:
    code = "from cerver.testing.mock_upstream import serve; serve(port=0)"
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        try:
            assert process.stdout is not None
            banner = "".join(process.stdout.readline() for _ in range(6))
            assert "TEST DOUBLE" in banner
            match = re.search(r"ANTHROPIC_BASE_URL=(http://127\.0\.0\.1:\d+)", banner)
            assert match is not None
            url = match.group(1)
            assert f"OPENAI_BASE_URL={url}/v1" in banner
            response = _wait_for_health(url)
            assert response.headers["x-cerver-test-double"] == "mock-upstream"
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)


def _wait_for_health(url: str, timeout: float = 10.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url + "/_mock/health")
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
