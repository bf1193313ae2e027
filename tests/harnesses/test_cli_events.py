"""The CLI event parsers on output recorded from the real CLIs (``cassettes/``)."""

from __future__ import annotations

from pathlib import Path

from cerver.types import Entry
from harnesses import claude_code_events, codex_events
from harnesses.base import Error, Message, TextDelta, Usage

CASSETTES = Path(__file__).parents[2] / "cassettes"


def lines(name: str) -> list[str]:
    return (CASSETTES / name).read_text().splitlines()


def entries(events: list) -> list[Entry]:
    return [e.entry for e in events if isinstance(e, Message)]


def test_claude_code_tool_turn() -> None:
    events, parser = claude_code_events.parse_lines(lines("claude_code/bash_tool.jsonl"))

    assert parser.session_id == "e1584f88-0242-4008-a25d-30e1a3e7513f"
    assert parser.finished and not parser.failed
    call, result, text = entries(events)
    assert (call.role, call.kind) == ("assistant", "tool_call")
    assert call.tool_call is not None
    assert call.tool_call.name == "Bash"
    assert call.tool_call.arguments == {"command": "echo hello-from-cc"}
    assert (result.role, result.kind, result.content) == ("tool", "tool_result", "hello-from-cc")
    assert result.tool_result is not None
    assert result.tool_result.tool_call_id == call.tool_call.id
    assert not result.tool_result.is_error
    assert text.content.startswith("[mock upstream] The tool returned: hello-from-cc")
    assert TextDelta(text.content) in events
    # Claude Code's own cost estimate is kept, not charged: the model proxy meters and prices
    # every request, and is the run's only charge (no double counting).
    assert not any(isinstance(e, Usage) for e in events)
    assert parser.cost_estimate_usd is not None and parser.cost_estimate_usd > 0
    assert not any(isinstance(e, Error) for e in events)


def test_claude_code_streams_partial_text_once() -> None:
    events, parser = claude_code_events.parse_lines(lines("claude_code/partial_text.jsonl"))

    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    [answer] = entries(events)
    assert len(deltas) > 10  # streamed as the model wrote it, not repeated whole at the end
    assert "".join(deltas) == answer.content
    assert parser.finished and not parser.failed


def test_claude_code_upstream_error() -> None:
    events, parser = claude_code_events.parse_lines(lines("claude_code/upstream_error.jsonl"))

    assert parser.failed
    assert entries(events) == []  # the CLI's synthetic error message is not a model answer
    error = events[-1]
    assert isinstance(error, Error)
    assert error.code == "upstream_error" and error.retryable
    assert "API status 500" in error.message and "upstream exploded" in error.message


def test_codex_command_turn() -> None:
    events, parser = codex_events.parse_lines(lines("codex/exec_command.jsonl"))

    assert parser.session_id == "01a20558-ea12-7331-92bf-17ad7e426d29"
    assert parser.finished and not parser.failed
    call, result, text = entries(events)
    assert call.tool_call is not None
    assert call.tool_call.name == "exec_command"
    assert call.tool_call.arguments == {"cmd": "/bin/bash -lc 'echo hello-from-codex'"}
    assert call.tool_call.id == "01a20558_item_0"
    assert result.tool_result is not None
    assert result.tool_result.tool_call_id == call.tool_call.id
    assert result.content == "hello-from-codex\n"
    assert text.content.endswith("hello-from-codex")


def test_codex_turn_failed() -> None:
    events, parser = codex_events.parse_lines(lines("codex/turn_failed.jsonl"))

    assert parser.failed and parser.finished
    assert isinstance(events[-1], Error)
    assert "model is not supported" in events[-1].message


def test_codex_failed_command_is_an_error_result() -> None:
    item = (
        '{"type":"item.completed","item":{"id":"item_3","type":"command_execution",'
        '"command":"false","aggregated_output":"","exit_code":1,"status":"failed"}}'
    )
    events, _ = codex_events.parse_lines([item])

    call, result = entries(events)  # no item.started: the call is emitted with its result
    assert call.tool_call is not None and result.tool_result is not None
    assert result.tool_result.is_error
    assert result.content == "[exit code 1]"


def test_parsers_ignore_noise() -> None:
    for module in (claude_code_events, codex_events):
        events, parser = module.parse_lines(["", "not json", "[1, 2]", '{"type": "future"}'])
        assert events == [] and not parser.finished
