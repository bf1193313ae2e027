"""The sandbox conformance suite: what every compute provider's sandboxes must do.

Like inspect_ai's sandbox self-check, it drives the public contract of
:class:`compute.base.Sandbox` and :class:`compute.base.Compute` only. A provider plugs in by
subclassing :class:`SandboxConformance` in its test module and supplying a ``compute``
fixture::

    class TestE2BSandbox(SandboxConformance):
        @pytest.fixture
        def compute(self, fake_e2b_agent):
            return E2BCompute(api_url=fake_e2b_agent.url)

Every test gets a fresh sandbox (``sandbox``) created with :data:`SPEC_ENV` and deleted
afterwards. The streaming tests hold a sandbox to what it declares: one with
``Sandbox.streams_exec`` must yield output as it is written and stop a command whose stream
is closed early; one without it is only checked for order and exit.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
import time
from collections.abc import AsyncIterator

import pytest

from cerver.errors import ComputeError, InvalidRequest, NotFound
from compute.base import Compute, ExecChunk, Sandbox, SandboxSpec

__all__ = ["OUTPUT_CAP", "SPEC_ENV", "SandboxConformance"]

OUTPUT_CAP = 1 << 20
"""Bytes of output kept per stream; a provider may add a marker of a few hundred bytes."""

SPEC_ENV = {"CONFORMANCE_SPEC": "from-spec"}


def _tar(*members: tuple[str, str, str]) -> bytes:
    """A gzipped tar of ``(kind, name, payload)``: ``file`` (text), ``symlink`` and
    ``hardlink`` (target), ``fifo``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}.get(
                kind, tarfile.FIFOTYPE
            )
            info.linkname = payload
            tar.addfile(info)
    return buffer.getvalue()


ESCAPING_ARCHIVES = {
    "dot-dot": _tar(("file", "ok.txt", "ok"), ("file", "../escaped.txt", "x")),
    "absolute": _tar(("file", "ok.txt", "ok"), ("file", "/tmp/escaped.txt", "x")),
    "symlink-out": _tar(("file", "ok.txt", "ok"), ("symlink", "etc", "/etc")),
    "symlink-up": _tar(("file", "ok.txt", "ok"), ("symlink", "up", "../..")),
    "hardlink-out": _tar(("file", "ok.txt", "ok"), ("hardlink", "passwd", "/etc/passwd")),
    "symlink-up-nested": _tar(("file", "ok.txt", "ok"), ("symlink", "a/b/up", "../../../x")),
    "fifo": _tar(("file", "ok.txt", "ok"), ("fifo", "pipe", "")),
}


class SandboxConformance:
    """The suite; subclasses provide the ``compute`` fixture (see the module docstring)."""

    @pytest.fixture
    async def sandbox(self, compute: Compute) -> AsyncIterator[Sandbox]:
        sandbox = await compute.create(SandboxSpec(session_id="sess_conformance", env=SPEC_ENV))
        try:
            yield sandbox
        finally:
            await sandbox.delete()

    # -- exec ---------------------------------------------------------------------------

    async def test_exec_captures_stdout_and_stderr(self, sandbox: Sandbox) -> None:
        result = await sandbox.exec("echo out; echo err >&2")

        assert (result.stdout, result.stderr, result.exit_code) == ("out\n", "err\n", 0)
        assert not result.timed_out
        assert result.duration_ms > 0

    @pytest.mark.parametrize(
        ("command", "exit_code"),
        [("exit 3", 3), ("false", 1), ("no-such-command-cerver", 127), ("kill -9 $$", 137)],
    )
    async def test_nonzero_exit_is_a_result(
        self, sandbox: Sandbox, command: str, exit_code: int
    ) -> None:
        result = await sandbox.exec(command)

        assert result.exit_code == exit_code
        assert not result.timed_out

    async def test_env_comes_from_the_spec_and_the_call(self, sandbox: Sandbox) -> None:
        show = 'printf "%s|%s" "$CONFORMANCE_SPEC" "$CALL_VAR"'

        assert (await sandbox.exec(show, env={"CALL_VAR": "a b"})).stdout == "from-spec|a b"
        overridden = await sandbox.exec(show, env={"CONFORMANCE_SPEC": "call wins"})
        assert overridden.stdout == "call wins|"

    async def test_commands_run_in_the_workspace(self, sandbox: Sandbox) -> None:
        await sandbox.write_file("marker.txt", b"here")
        assert (await sandbox.exec("cat marker.txt")).stdout == "here"

        await sandbox.exec("echo made > made.txt")
        assert await sandbox.read_file("made.txt") == b"made\n"

    async def test_unicode_output_is_decoded(self, sandbox: Sandbox) -> None:
        text = "héllo ✓ 日本語 🚀"
        assert (await sandbox.exec(f"printf '%s' '{text}'")).stdout == text

        invalid = await sandbox.exec(r"printf 'a\377b'")
        assert invalid.stdout == "a\ufffdb"

    @pytest.mark.parametrize("stream", ["stdout", "stderr"])
    async def test_large_output_is_truncated_with_a_marker(
        self, sandbox: Sandbox, stream: str
    ) -> None:
        redirect = ">&2" if stream == "stderr" else ""
        result = await asyncio.wait_for(
            sandbox.exec(f"head -c 5000000 /dev/zero | tr '\\0' a {redirect}"), timeout=30
        )

        text = getattr(result, stream)
        assert result.exit_code == 0
        assert text.startswith("a" * OUTPUT_CAP)
        assert OUTPUT_CAP < len(text) < OUTPUT_CAP + 500
        assert "truncated" in text[OUTPUT_CAP:]

    # -- timeouts -----------------------------------------------------------------------

    async def test_timeout_is_a_result_with_the_output_so_far(self, sandbox: Sandbox) -> None:
        started = time.monotonic()
        result = await sandbox.exec("echo before; sleep 30", timeout=0.5)

        assert result.timed_out
        assert result.exit_code == 124
        assert result.stdout == "before\n"
        assert time.monotonic() - started < 10

    async def test_timeout_kills_the_whole_process_tree(self, sandbox: Sandbox) -> None:
        # A backgrounded grandchild ticks into a file; after the timeout the file must stop
        # growing. (Checked through the workspace, so it holds for remote sandboxes too.)
        ticker = "(while true; do echo tick >> ticks.txt; sleep 0.05; done) & sleep 30"
        result = await sandbox.exec(ticker, timeout=0.5)
        assert result.timed_out

        await asyncio.sleep(0.2)
        ticks = await sandbox.read_file("ticks.txt")
        await asyncio.sleep(0.5)
        assert await sandbox.read_file("ticks.txt") == ticks

    # -- streaming ----------------------------------------------------------------------

    async def test_exec_stream_yields_in_order_and_ends_with_exit(self, sandbox: Sandbox) -> None:
        command = "for i in 1 2 3; do echo $i; sleep 0.05; done; echo err >&2; exit 7"
        chunks = [chunk async for chunk in sandbox.exec_stream(command)]

        assert chunks[-1] == ExecChunk("exit", exit_code=7)
        assert all(chunk.stream != "exit" for chunk in chunks[:-1])
        assert "".join(c.data for c in chunks if c.stream == "stdout") == "1\n2\n3\n"
        assert "".join(c.data for c in chunks if c.stream == "stderr") == "err\n"

    async def test_exec_stream_is_incremental(self, sandbox: Sandbox) -> None:
        if not sandbox.streams_exec:
            pytest.skip("this provider's exec_stream replays a finished exec")
        started = time.monotonic()
        arrivals: list[tuple[float, ExecChunk]] = []
        async for chunk in sandbox.exec_stream("echo first; sleep 1; echo second"):
            arrivals.append((time.monotonic() - started, chunk))

        first_at, first = arrivals[0]
        assert first == ExecChunk("stdout", "first\n")
        assert first_at < arrivals[-1][0] - 0.5

    async def test_closing_an_exec_stream_early_stops_the_command(self, sandbox: Sandbox) -> None:
        if not sandbox.streams_exec:
            pytest.skip("this provider's exec_stream replays a finished exec")
        ticking = "echo started; while true; do echo tick >> ticks.txt; sleep 0.1; done"
        stream = sandbox.exec_stream(ticking, timeout=30)
        assert await anext(stream) == ExecChunk("stdout", "started\n")
        await stream.aclose()  # type: ignore[attr-defined]

        count = "cat ticks.txt 2>/dev/null | wc -l"
        await asyncio.sleep(0.5)  # a stop still in flight lands
        ticks = (await sandbox.exec(count)).stdout
        await asyncio.sleep(0.5)
        assert (await sandbox.exec(count)).stdout == ticks  # nothing writes any more

    async def test_exec_stream_timeout_ends_with_exit_124(self, sandbox: Sandbox) -> None:
        chunks = [c async for c in sandbox.exec_stream("echo before; sleep 30", timeout=0.5)]

        assert chunks[0] == ExecChunk("stdout", "before\n")
        last = chunks[-1]
        assert (last.stream, last.exit_code) == ("exit", 124)
        assert last.limit in (None, "wall_time")  # a provider may name the limit it met

    # -- files --------------------------------------------------------------------------

    async def test_binary_files_round_trip_in_nested_directories(self, sandbox: Sandbox) -> None:
        data = bytes(range(256)) * 64
        await sandbox.write_file("a/b/c.bin", data)

        assert await sandbox.read_file("a/b/c.bin") == data
        assert (await sandbox.exec("wc -c < a/b/c.bin")).stdout.strip() == str(len(data))

    async def test_write_file_replaces(self, sandbox: Sandbox) -> None:
        await sandbox.write_file("f.txt", b"a much longer first version")
        await sandbox.write_file("f.txt", b"v2")

        assert await sandbox.read_file("f.txt") == b"v2"

    async def test_list_files_lists_regular_files_relative_and_sorted(
        self, sandbox: Sandbox
    ) -> None:
        for path in ("top.txt", "a/d.txt", "a/b/c.bin"):
            await sandbox.write_file(path, b"x")
        await sandbox.exec("ln -s top.txt link.txt && mkdir empty")

        assert await sandbox.list_files() == ["a/b/c.bin", "a/d.txt", "top.txt"]
        assert await sandbox.list_files("a") == ["b/c.bin", "d.txt"]

    async def test_the_workspace_absolute_path_maps_into_it(self, sandbox: Sandbox) -> None:
        cwd = (await sandbox.exec("pwd")).stdout.strip()
        await sandbox.write_file(f"{cwd}/abs.txt", b"abs")

        assert (await sandbox.exec("cat abs.txt")).stdout == "abs"
        assert await sandbox.read_file(f"{cwd}/abs.txt") == b"abs"

    async def test_missing_file_is_not_found(self, sandbox: Sandbox) -> None:
        with pytest.raises(NotFound):
            await sandbox.read_file("nope.txt")
        with pytest.raises(NotFound):
            await sandbox.read_file("no/such/dir/file.txt")

    @pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "/"])
    async def test_paths_escaping_the_workspace_are_refused(
        self, sandbox: Sandbox, path: str
    ) -> None:
        with pytest.raises(InvalidRequest, match="outside"):
            await sandbox.read_file(path)
        with pytest.raises(InvalidRequest, match="outside"):
            await sandbox.write_file(path, b"x")

    async def test_symlinks_out_of_the_workspace_are_refused(self, sandbox: Sandbox) -> None:
        made = await sandbox.exec("ln -s /etc/passwd passwd && ln -s / rootfs && ln -s .. up")
        assert made.exit_code == 0, made.stderr

        with pytest.raises(InvalidRequest):
            await sandbox.read_file("passwd")
        with pytest.raises(InvalidRequest):
            await sandbox.read_file("rootfs/etc/hostname")
        with pytest.raises(InvalidRequest):
            await sandbox.write_file("up/escaped.txt", b"x")
        with pytest.raises(InvalidRequest):
            await sandbox.list_files("rootfs")

    # -- state --------------------------------------------------------------------------

    async def test_state_restores_into_a_fresh_sandbox(
        self, sandbox: Sandbox, compute: Compute
    ) -> None:
        binary = bytes(range(256)) * 16
        await sandbox.write_file("data/blob.bin", binary)
        await sandbox.write_file("run.sh", b"#!/bin/sh\necho ran\n")
        setup = await sandbox.exec("chmod +x run.sh && ln -s data/blob.bin alias && mkdir empty")
        assert setup.exit_code == 0, setup.stderr

        archive = await sandbox.get_state()
        async with await compute.create(SandboxSpec(session_id="sess_restore")) as fresh:
            await fresh.set_state(archive)

            assert await fresh.read_file("data/blob.bin") == binary
            assert (await fresh.exec("./run.sh")).stdout == "ran\n"
            check = await fresh.exec("readlink alias && test -d empty && echo ok")
            assert check.stdout == "data/blob.bin\nok\n"

    @pytest.mark.parametrize("name", sorted(ESCAPING_ARCHIVES))
    async def test_set_state_refuses_members_that_escape(self, sandbox: Sandbox, name: str) -> None:
        with pytest.raises(InvalidRequest, match="member"):
            await sandbox.set_state(ESCAPING_ARCHIVES[name])

        assert await sandbox.list_files() == []  # refused before anything was written

    async def test_set_state_refuses_writing_through_an_existing_link(
        self, sandbox: Sandbox
    ) -> None:
        assert (await sandbox.exec("ln -s / rootfs")).exit_code == 0

        with pytest.raises(InvalidRequest, match="member"):
            await sandbox.set_state(_tar(("file", "rootfs/tmp/cerver-escaped.txt", "x")))

    # -- lifecycle ----------------------------------------------------------------------

    async def test_attach_returns_the_same_workspace(
        self, sandbox: Sandbox, compute: Compute
    ) -> None:
        await sandbox.write_file("kept.txt", b"kept")
        again = await compute.attach(sandbox.sandbox_id)

        assert again.sandbox_id == sandbox.sandbox_id
        assert (await again.exec("cat kept.txt")).stdout == "kept"
        assert (await again.exec('printf %s "$CONFORMANCE_SPEC"')).stdout == "from-spec"

    async def test_attach_to_an_unknown_sandbox_is_not_found(self, compute: Compute) -> None:
        with pytest.raises(NotFound):
            await compute.attach("sbx_0123456789abcdef")

    async def test_delete_is_idempotent_and_final(self, compute: Compute) -> None:
        sandbox = await compute.create(SandboxSpec(session_id="sess_delete"))
        await sandbox.write_file("f.txt", b"x")

        await sandbox.delete()
        await sandbox.delete()

        with pytest.raises(NotFound):
            await compute.attach(sandbox.sandbox_id)
        with pytest.raises(ComputeError):
            await sandbox.exec("true")
