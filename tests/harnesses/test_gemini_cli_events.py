"""Gemini CLI's event parser on stream-json output recorded from the real CLI (0.61.0).

The cassettes under ``cassettes/gemini_cli/`` were recorded by running ``gemini -p …
--output-format stream-json`` against Cerver's mock upstream (a test double), with scripted
replies for the text, tool and error cases.
"""

from __future__ import annotations

from pathlib import Path

from cerver.types import Entry
from harnesses.base import Error, Message, TextDelta
from harnesses.gemini_cli_events import GeminiCliParser, parse_lines

CASSETTES = Path(__file__).parents[2] / "cassettes" / "gemini_cli"


def lines(name: str) -> list[str]:
    return (CASSETTES / name).read_text().splitlines()


def entries(events: list) -> list[Entry]:
    return [e.entry for e in events if isinstance(e, Message)]


def test_a_shell_tool_turn() -> None:
    events, parser = parse_lines(lines("shell_tool.jsonl"))

    assert parser.session_id == "1d5eeb93-afbc-40b5-b77c-3bd273e0d5b7"
    assert parser.model == "gemini-2.5-pro"
    assert parser.finished and not parser.failed
    call, result, text = entries(events)
    assert call.tool_call is not None and call.kind == "tool_call"
    assert call.tool_call.name == "run_shell_command"
    assert call.tool_call.arguments == {"command": "echo hello-cassette && false"}
    assert result.tool_result is not None
    assert result.tool_result.tool_call_id == call.tool_call.id
    assert (result.role, result.content, result.tool_result.is_error) == (
        "tool",
        "hello-cassette",
        False,  # the event has no exit code: a failing command is a "success"
    )
    # The streamed deltas become one assistant entry once the turn ends.
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 5 and "".join(deltas) == text.content
    assert text.content.startswith("[mock upstream] The tool returned:")
    assert parser.stats is not None and parser.stats["input_tokens"] > 0
    assert not any(isinstance(e, Error) for e in events)


def test_text_keeps_its_line_breaks() -> None:
    events, parser = parse_lines(lines("text.jsonl"))

    [answer] = entries(events)
    assert answer.content == "Two parts: first line.\nSecond line."
    assert parser.finished and not parser.failed


def test_text_before_tools_and_a_failed_tool() -> None:
    events, _ = parse_lines(lines("write_and_failed_read.jsonl"))

    kinds = [(e.role, e.kind) for e in entries(events)]
    assert kinds == [
        ("assistant", "text"),
        ("assistant", "tool_call"),
        ("assistant", "tool_call"),
        ("tool", "tool_result"),
        ("tool", "tool_result"),
        ("assistant", "text"),
    ]
    text, write, read, wrote, failed = entries(events)[:5]
    assert text.content == "Writing it."
    assert write.tool_call is not None and write.tool_call.name == "write_file"
    assert wrote.tool_result is not None and not wrote.tool_result.is_error
    assert wrote.content == ""
    assert read.tool_call is not None and failed.tool_result is not None
    assert failed.tool_result.tool_call_id == read.tool_call.id
    assert failed.tool_result.is_error
    assert "file_path" in failed.content


def test_an_api_error_with_its_code() -> None:
    events, parser = parse_lines(
        [
            '{"type":"init","session_id":"s1","model":"gemini-2.5-pro"}',
            '{"type":"result","status":"error","error":{"type":"unknown","message":'
            '"[API Error: {\\"error\\":{\\"code\\":400,\\"message\\":\\"bad\\",'
            '\\"status\\":\\"INVALID_ARGUMENT\\"}}]"}}',
        ]
    )

    assert parser.finished and parser.failed
    [error] = events
    assert isinstance(error, Error)
    assert (error.code, error.retryable) == ("upstream_error", False)
    assert "bad" in error.message


def test_an_overloaded_upstream_is_retryable() -> None:
    events, parser = parse_lines(lines("upstream_503.jsonl"))

    assert parser.failed and entries(events) == []
    [error] = events
    assert isinstance(error, Error)
    assert (
        error.message == "Gemini CLI ended the turn with an error: [API Error: overloaded by test]"
    )
    assert (error.code, error.retryable) == ("upstream_error", True)


def test_a_rate_limit_is_retryable() -> None:
    events, _ = parse_lines(lines("upstream_429.jsonl"))

    [error] = events
    assert isinstance(error, Error) and "quota exhausted by test" in error.message
    assert (error.code, error.retryable) == ("upstream_error", True)


def test_a_cli_error_explains_a_failed_result() -> None:
    parser = GeminiCliParser()
    assert parser.feed('{"type":"error","severity":"warning","message":"loop detected"}') == []
    assert parser.feed('{"type":"error","severity":"error","message":"turn limit"}') == []
    [error] = parser.feed('{"type":"result","status":"error"}')
    assert isinstance(error, Error)
    assert (error.code, error.message) == (
        "harness_error",
        "Gemini CLI ended the turn with an error: turn limit",
    )


def test_noise_is_ignored() -> None:
    parser = GeminiCliParser()
    for line in ("", "Warning: 256-color support not detected.", "[1, 2]", '{"type":"other"}'):
        assert parser.feed(line) == []
    assert not parser.finished and parser.session_id is None
