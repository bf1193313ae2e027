"""The sandbox tools: every call gets a result, failures become error results."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from cerver.errors import ComputeError
from cerver.types import ExecResult, ToolCallPart
from harnesses import tools
from harnesses.tools import (
    MAX_OUTPUT_CHARS,
    SANDBOX_TOOLS,
    format_exec_result,
    parse_arguments,
    run_tool,
    truncate,
)

if TYPE_CHECKING:
    from cerver.testing.sandbox import ShellSandbox


def call(name: str, **arguments: Any) -> ToolCallPart:
    return ToolCallPart(id="call_1", name=name, arguments=arguments)


def test_tool_definitions_are_neutral_json_schemas() -> None:
    assert [t.name for t in SANDBOX_TOOLS] == ["bash", "read_file", "write_file"]
    for spec in SANDBOX_TOOLS:
        assert spec.description
        assert spec.parameters["type"] == "object"
        assert set(spec.parameters["required"]) <= set(spec.parameters["properties"])


async def test_bash_runs_on_the_sandbox(sandbox: ShellSandbox) -> None:
    result = await run_tool(sandbox, call("bash", command="echo hi > f.txt && cat f.txt"))
    assert result.tool_call_id == "call_1"
    assert result.output == "hi"
    assert not result.is_error
    assert (sandbox.root / "f.txt").read_text() == "hi\n"


async def test_bash_reports_stdout_stderr_and_exit_code(sandbox: ShellSandbox) -> None:
    result = await run_tool(sandbox, call("bash", command="echo out; echo err >&2; exit 3"))
    assert result.output == "out\nerr\nexit code 3"
    assert not result.is_error  # a non-zero exit is a result


async def test_bash_without_output(sandbox: ShellSandbox) -> None:
    assert (await run_tool(sandbox, call("bash", command="true"))).output == "(no output)"


async def test_bash_timeout_is_an_error_result(sandbox: ShellSandbox) -> None:
    result = await run_tool(sandbox, call("bash", command="sleep 5", timeout=0.2))
    assert result.is_error
    assert "timed out after 0.2 s" in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "'command' is required"),
        ({"command": 3}, "'command' is required"),
        ({"command": "ls", "timeout": -1}, "'timeout' must be a positive number"),
        ({"command": "ls", "timeout": "soon"}, "'timeout' must be a positive number"),
        ({"command": "ls", "cwd": "/"}, "unexpected argument(s) 'cwd'"),
        ({"_invalid_json": "{oops"}, "not a JSON object"),
    ],
)
async def test_bad_arguments_are_error_results(
    sandbox: ShellSandbox, arguments: dict[str, Any], message: str
) -> None:
    result = await run_tool(sandbox, ToolCallPart(id="c", name="bash", arguments=arguments))
    assert result.is_error
    assert result.output.startswith("Invalid arguments for bash:")
    assert message in result.output
    assert sandbox.calls == []


async def test_unknown_tool(sandbox: ShellSandbox) -> None:
    result = await run_tool(sandbox, call("python", code="1"))
    assert result.is_error
    assert result.output == "Unknown tool 'python'. Available tools: bash, read_file, write_file."


async def test_no_sandbox() -> None:
    result = await run_tool(None, call("bash", command="ls"))
    assert result.is_error and "transcript-only" in result.output


async def test_write_then_read_file(sandbox: ShellSandbox) -> None:
    written = await run_tool(sandbox, call("write_file", path="d/a.txt", content="héllo"))
    assert written.output == "Wrote 6 bytes to d/a.txt."
    read = await run_tool(sandbox, call("read_file", path="d/a.txt"))
    assert read.output == "héllo" and not read.is_error


async def test_read_missing_file_is_an_error_result(sandbox: ShellSandbox) -> None:
    result = await run_tool(sandbox, call("read_file", path="nope.txt"))
    assert result.is_error
    assert result.output == "read_file failed (not_found): No such file: 'nope.txt'"


async def test_path_escaping_the_workspace(sandbox: ShellSandbox) -> None:
    result = await run_tool(sandbox, call("write_file", path="../../x", content=""))
    assert result.is_error and "(invalid_request)" in result.output


async def test_binary_file(sandbox: ShellSandbox) -> None:
    (sandbox.root / "b.bin").write_bytes(b"\x00\x01")
    result = await run_tool(sandbox, call("read_file", path="b.bin"))
    assert result.is_error and "binary file (2 bytes)" in result.output


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ComputeError("sandbox is gone"), "bash failed (compute_error): sandbox is gone"),
        (OSError("broken pipe"), "bash failed: OSError: broken pipe"),
    ],
)
async def test_backend_failures_are_error_results(
    sandbox: ShellSandbox, exc: Exception, expected: str
) -> None:
    sandbox.fail_with = exc
    result = await run_tool(sandbox, call("bash", command="ls"))
    assert result.is_error and result.output == expected


async def test_hung_backend_is_an_error_result(
    sandbox: ShellSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hang(path: str) -> bytes:
        await asyncio.sleep(10)
        return b""

    monkeypatch.setattr(sandbox, "read_file", hang)
    monkeypatch.setattr(tools, "FILE_TIMEOUT", 0.05)
    result = await run_tool(sandbox, call("read_file", path="x"))
    assert result.is_error and "did not answer in time" in result.output


async def test_cancellation_propagates(sandbox: ShellSandbox) -> None:
    task = asyncio.create_task(run_tool(sandbox, call("bash", command="sleep 5")))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_long_output_is_truncated_keeping_head_and_tail(sandbox: ShellSandbox) -> None:
    result = await run_tool(sandbox, call("bash", command="seq 1 20000; exit 1"))
    assert len(result.output) < MAX_OUTPUT_CHARS + 100
    assert result.output.startswith("1\n2\n")
    assert "characters truncated" in result.output
    assert result.output.endswith("19999\n20000\nexit code 1")


def test_truncate() -> None:
    assert truncate("abc", 10) == "abc"
    cut = truncate("a" * 50 + "b" * 50, 20)
    assert cut == "a" * 10 + "\n[… 80 characters truncated …]\n" + "b" * 10


def test_format_exec_result_orders_stdout_stderr_exit() -> None:
    result = ExecResult(stdout="o\n", stderr="e\n", exit_code=2, duration_ms=1)
    assert format_exec_result(result) == "o\ne\nexit code 2"
    timed_out = ExecResult(exit_code=124, duration_ms=1, timed_out=True)
    assert format_exec_result(timed_out, timeout=5) == (
        "command timed out after 5 s and was killed (exit code 124)"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"command": "ls"}', {"command": "ls"}),
        ("", {}),
        ("[1]", {"_invalid_json": "[1]"}),
        ('{"command": ', {"_invalid_json": '{"command": '}),
    ],
)
def test_parse_arguments(raw: str, expected: dict[str, Any]) -> None:
    assert parse_arguments(raw) == expected
