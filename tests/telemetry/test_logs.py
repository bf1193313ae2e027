"""Structured logs: one JSON line per request and per run, with their ids, never a secret."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import orjson
import pytest

from cerver.telemetry import logs
from tests.conftest import ADMIN_KEY


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    logger = logging.getLogger("cerver")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    stream = io.StringIO()  # not a terminal: JSON
    logs.configure(stream=stream)
    try:
        yield stream
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


async def test_requests_and_runs_log_one_json_line_each_with_their_ids(
    http: httpx.AsyncClient, log_lines: io.StringIO
) -> None:
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    response = await http.post(
        f"/v2/sessions/{sid}/run-llm",
        json={"input": "log-canary text"},
        headers={"X-Request-Id": "req-42"},
    )
    run_id = response.json()["run_id"]
    lines = [orjson.loads(line) for line in log_lines.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "cerver.access"]
    assert [(a["method"], a["status"]) for a in access] == [("POST", 201), ("POST", 200)]
    assert access[1]["request_id"] == "req-42"
    assert access[1]["path"] == f"/v2/sessions/{sid}/run-llm"
    [turn] = [line for line in lines if line.get("run_id") == run_id]
    assert turn["request_id"] == "req-42"
    assert turn["trace_id"] == response.headers["traceparent"].split("-")[1]
    assert (turn["session_id"], turn["status"]) == (sid, "completed")
    assert turn["output_tokens"] > 0
    text = log_lines.getvalue()
    for secret in (ADMIN_KEY, "test-anthropic-key", "log-canary"):
        assert secret not in text


def test_a_terminal_gets_text_lines() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    logger = logging.getLogger("cerver")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    stream = Terminal()
    try:
        logs.configure(stream=stream)
        logging.getLogger("cerver.test").info("hello", extra={"fields": {"run_id": "run_1"}})
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
    assert "hello run_id=run_1" in stream.getvalue()
