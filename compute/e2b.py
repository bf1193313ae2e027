"""The ``e2b`` provider: E2B cloud sandboxes through the official ``e2b`` SDK.

Install with ``pip install 'cerver[e2b]'`` and set ``E2B_API_KEY``. The SDK is imported when
the provider is built, never at start-up. Each sandbox gets an explicit lifetime (the
session's ``timeout_minutes``) and explicit internet access (the spec's ``network``); the
workspace is ``/home/user/workspace``.

What Cerver adds on top of the SDK, so E2B passes the same conformance suite as ``local``:
command timeouts that kill the whole process tree (every process of a command carries a
``CERVER_RUN`` marker in its environment), 1 MiB output caps, workspace path checks resolved
inside the sandbox, and state archives checked before upload. SDK exceptions are translated by
one table (:data:`VENDOR_ERRORS`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field

from cerver.errors import ComputeError, ComputeTimeout, InvalidRequest, NotConfigured, NotFound
from cerver.options import PluginOptions, PluginSettings, plugin_settings
from cerver.types import ExecResult
from compute import _remote_paths as paths
from compute._cli_hosting import remote_hosting
from compute.base import (
    MISSING,
    PASS_THROUGH,
    Capabilities,
    CliHosting,
    Compute,
    ExecChunk,
    Profile,
    Sandbox,
    SandboxSpec,
    VendorErrors,
)

__all__ = ["E2BCompute", "E2BSandbox"]

WORKSPACE = "/home/user/workspace"
_TEMPLATE = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$"
OUTPUT_CAP = 1 << 20
_KILL = (
    "for f in /proc/[0-9]*/environ; do "
    'grep -qsa CERVER_RUN={token} "$f" && p=${{f#/proc/}} && kill -KILL ${{p%/environ}}; '
    "done 2>/dev/null; true"
)


class _Capped:
    """Output of one stream, cut at :data:`OUTPUT_CAP` characters with a marker."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False

    def add(self, text: str) -> str:
        """Keep ``text`` (or what fits); returns what was kept, for streaming."""
        if self.truncated:
            return ""
        room = OUTPUT_CAP - self.size
        kept = text[:room]
        self.parts.append(kept)
        self.size += len(kept)
        if len(text) > room:
            self.truncated = True
            marker = f"\n[cerver: {self.name} truncated at {OUTPUT_CAP} bytes]\n"
            self.parts.append(marker)
            return kept + marker
        return kept

    def text(self) -> str:
        return "".join(self.parts)


VENDOR_ERRORS = VendorErrors(
    "E2B",
    {
        "NotFoundException": (MISSING, False),  # sandbox or file; see the call's ``missing``
        "AuthenticationException": (NotConfigured, False),
        "RateLimitException": (ComputeError, True),
        "ServiceBusyException": (ComputeError, True),
        "TimeoutException": (ComputeTimeout, True),  # includes SandboxUnreachableException
        "TimeoutError": (PASS_THROUGH, False),  # our own asyncio.wait_for deadline
    },
    credentials=("E2B_API_KEY",),
)
"""The e2b SDK's exceptions as Cerver's (its transport errors are not all SandboxException;
the TRANSPORT_ERRORS underneath catch them)."""


class E2BSandbox(Sandbox):
    """One E2B sandbox; get it from :meth:`E2BCompute.create` or ``attach``."""

    provider: ClassVar[str] = "e2b"
    streams_exec: ClassVar[bool] = True

    def __init__(self, sdk_sandbox: Any) -> None:
        self._sbx = sdk_sandbox
        self.sandbox_id = sdk_sandbox.sandbox_id

    # -- commands -----------------------------------------------------------------------

    async def _start(
        self,
        command: str,
        env: Mapping[str, str] | None,
        stdout: _Capped,
        stderr: _Capped,
        queue: asyncio.Queue[ExecChunk] | None,
    ) -> tuple[Any, str]:
        token = secrets.token_hex(8)

        def sink(capped: _Capped, stream: str) -> Any:
            def on_output(text: str) -> None:
                kept = capped.add(text)
                if queue is not None and kept:
                    queue.put_nowait(ExecChunk(stream, kept))  # type: ignore[arg-type]

            return on_output

        # An inner bash so that `kill -9 $$` reports 137 like everywhere else.
        async with VENDOR_ERRORS.translate("start the command"):
            handle = await self._sbx.commands.run(
                f"bash -c {shlex.quote(command)}",
                background=True,
                envs={**(env or {}), "CERVER_RUN": token},
                cwd=WORKSPACE,
                timeout=0,
                on_stdout=sink(stdout, "stdout"),
                on_stderr=sink(stderr, "stderr"),
            )
        return handle, token

    async def _finish(self, handle: Any, token: str, timeout: float) -> tuple[int, bool]:
        from e2b.sandbox.commands.command_handle import CommandExitException

        try:
            async with VENDOR_ERRORS.translate("run the command"):
                try:
                    result = await asyncio.wait_for(handle.wait(), timeout)
                except CommandExitException as exc:  # a non-zero exit is a result
                    return exc.exit_code, False
            return result.exit_code, False
        except TimeoutError:
            await self._kill_tree(token)
            return 124, True

    async def _kill_tree(self, token: str) -> None:
        async with VENDOR_ERRORS.translate("stop the timed-out command"):
            await self._sbx.commands.run(_KILL.format(token=token), timeout=30)

    async def exec(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        """See :meth:`Sandbox.exec`. Raises ComputeError when E2B fails (sandbox gone)."""
        if not timeout > 0:
            raise InvalidRequest(f"timeout must be a positive number of seconds, not {timeout!r}.")
        started = time.perf_counter()
        stdout, stderr = _Capped("stdout"), _Capped("stderr")
        handle, token = await self._start(command, env, stdout, stderr, None)
        exit_code, timed_out = await self._finish(handle, token, timeout)
        return ExecResult(
            stdout=stdout.text(),
            stderr=stderr.text(),
            exit_code=exit_code,
            duration_ms=(time.perf_counter() - started) * 1000,
            timed_out=timed_out,
        )

    async def exec_stream(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[ExecChunk]:
        """Yield output as E2B delivers it; the last chunk is ``exit`` (124 on timeout)."""
        queue: asyncio.Queue[ExecChunk] = asyncio.Queue()
        handle, token = await self._start(command, env, _Capped("stdout"), _Capped("stderr"), queue)
        waiter = asyncio.create_task(self._finish(handle, token, timeout))
        getter: asyncio.Future[ExecChunk] | None = None
        try:
            while not (waiter.done() and queue.empty()):
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, waiter}, return_when="FIRST_COMPLETED")
                if getter in done:
                    yield getter.result()
                else:
                    getter.cancel()
            exit_code, _ = waiter.result()
            yield ExecChunk("exit", exit_code=exit_code)
        finally:
            if getter is not None:  # a read cancelled mid-wait leaves its getter pending
                getter.cancel()
            if not waiter.done():
                waiter.cancel()
                await self._kill_tree(token)

    # -- files --------------------------------------------------------------------------

    async def _checked(self, *requested: str) -> list[str]:
        """Absolute paths for ``requested``, refused if they or their links leave the
        workspace."""
        absolute = [paths.lexical(p, WORKSPACE) for p in requested]
        result = await self.exec(paths.resolve_script(absolute), timeout=30)
        if result.exit_code != 0:
            raise ComputeError(f"E2B: could not resolve {requested!r}: {result.stderr.strip()}")
        resolved = result.stdout.splitlines()
        for path, real in zip(requested, resolved, strict=True):
            if not paths.inside(real, WORKSPACE):
                raise paths.outside(path, WORKSPACE)
        return absolute

    async def read_file(self, path: str) -> bytes:
        (absolute,) = await self._checked(path)
        async with VENDOR_ERRORS.translate(f"read {path!r}", missing=NotFound):
            return bytes(await self._sbx.files.read(absolute, format="bytes"))

    async def write_file(self, path: str, data: bytes) -> None:
        (absolute,) = await self._checked(path)
        async with VENDOR_ERRORS.translate(f"write {path!r}"):
            await self._sbx.files.write(absolute, data, use_octet_stream=True)

    async def cli_hosting(self) -> CliHosting:
        """The CLIs of the template (or installed by Cerver); the model proxy at the
        gateway's public URL. Files upload natively, so a missing CLI can be installed."""
        return await remote_hosting(self, vendor="E2B", can_install=True)

    async def list_files(self, path: str = ".") -> list[str]:
        (absolute,) = await self._checked(path)
        quoted = shlex.quote(absolute)
        result = await self.exec(
            f"test -d {quoted} && cd {quoted} && find . -type f -printf '%P\\n'"
        )
        if result.exit_code != 0:
            raise NotFound(f"No directory {path!r} in the workspace.", context={"path": path})
        return sorted(line for line in result.stdout.splitlines() if line)

    # -- state ----------------------------------------------------------------------------

    async def get_state(self) -> bytes:
        """A gzipped tar of the workspace, fetched as a file (no output cap applies)."""
        temp = f"/tmp/cerver-state-{secrets.token_hex(6)}.tgz"
        packed = await self.exec(f"tar -czf {temp} -C {WORKSPACE} .", timeout=300)
        if packed.exit_code != 0:
            raise ComputeError(f"E2B: could not snapshot the workspace: {packed.stderr.strip()}")
        try:
            async with VENDOR_ERRORS.translate("download the snapshot"):
                return bytes(await self._sbx.files.read(temp, format="bytes"))
        finally:
            await self.exec(f"rm -f {temp}")

    async def set_state(self, archive: bytes) -> None:
        """Restore a snapshot; every member is checked (also against links already in the
        workspace) before the archive is uploaded."""
        members = paths.check_archive(archive, WORKSPACE)
        if members:
            try:
                await self._checked(*members)
            except InvalidRequest as exc:
                raise InvalidRequest(
                    f"Refusing state archive member: {exc.message}", context=exc.context
                ) from exc
        temp = f"/tmp/cerver-state-{secrets.token_hex(6)}.tgz"
        async with VENDOR_ERRORS.translate("upload the snapshot"):
            await self._sbx.files.write(temp, archive, use_octet_stream=True)
        restored = await self.exec(
            f"tar -xzf {temp} -C {WORKSPACE} --no-same-owner; code=$?; rm -f {temp}; exit $code",
            timeout=300,
        )
        if restored.exit_code != 0:
            raise ComputeError(f"E2B: could not restore the workspace: {restored.stderr.strip()}")

    async def delete(self) -> None:
        """Kill the sandbox. Idempotent."""
        async with VENDOR_ERRORS.translate("kill the sandbox"):
            await self._sbx.kill()


class E2BCompute(Compute):
    """E2B cloud sandboxes (needs E2B_API_KEY and ``pip install 'cerver[e2b]'``).

    Args:
        api_key: default ``$E2B_API_KEY``.
        template: the sandbox template (default: ``$CERVER_E2B_TEMPLATE``, else E2B's
            ``base``); a session's ``options.template`` wins.
        api_url, sandbox_url: override E2B's endpoints (a self-hosted E2B, or a test double;
            default: ``$CERVER_E2B_API_URL``, ``$CERVER_E2B_SANDBOX_URL``).
        request_timeout: seconds for each control-plane request.

    Raises:
        MissingDependency: the ``e2b`` package is not installed.
        NotConfigured: no API key.
    """

    name: ClassVar[str] = "e2b"
    sdk_module: ClassVar[str] = "e2b"
    credentials: ClassVar[tuple[str, ...]] = VENDOR_ERRORS.credentials
    vendor_errors: ClassVar[VendorErrors] = VENDOR_ERRORS
    capabilities: ClassVar[Capabilities] = Capabilities(
        runtimes=("shell", "python", "node"),
        package_install=True,
        public_preview=True,
        persistence="medium",
        max_timeout_s=24 * 3600,
    )
    # Prior figures (E2B's published ~150 ms boot, 2 vCPU pricing); learned ones replace them.
    profile: ClassVar[Profile] = Profile(startup_ms=900, cost_per_hour_usd=0.10)

    class Options(PluginOptions):
        """Per session: ``compute: {"provider": "e2b", "options": {"template": "…"}}``."""

        template: str | None = Field(default=None, pattern=_TEMPLATE, description="E2B template.")

    class Settings(PluginSettings):
        """Gateway-wide: ``CERVER_E2B_TEMPLATE``, ``CERVER_E2B_API_URL``,
        ``CERVER_E2B_SANDBOX_URL``."""

        template: str | None = None
        api_url: str | None = None
        sandbox_url: str | None = None

    def __init__(
        self,
        api_key: str | None = None,
        *,
        template: str | None = None,
        api_url: str | None = None,
        sandbox_url: str | None = None,
        request_timeout: float = 30.0,
        model_proxy_url: str | None = None,
    ) -> None:
        e2b = self._import_sdk("e2b")
        self._require_credentials("E2B API key", {"E2B_API_KEY": api_key})
        api_key = api_key or os.environ["E2B_API_KEY"]
        settings = plugin_settings(
            self.name, self.Settings, template=template, api_url=api_url, sandbox_url=sandbox_url
        )
        self._sdk = e2b.AsyncSandbox
        self._template = settings.template
        self._opts: dict[str, Any] = {"api_key": api_key, "request_timeout": request_timeout}
        if settings.api_url:
            self._opts["api_url"] = settings.api_url
        if settings.sandbox_url:
            self._opts["sandbox_url"] = settings.sandbox_url
        # The gateway's host: the one destination of a sandbox without network, so that a
        # CLI harness in it reaches the model proxy (E2B's allow rules win over its deny).
        self._gateway_host = urlsplit(model_proxy_url).hostname if model_proxy_url else None

    async def create(self, spec: SandboxSpec) -> E2BSandbox:
        """Create a sandbox living ``spec.timeout_minutes``, internet only if ``spec.network``;
        without it, the gateway's host (``model_proxy_url``) is its one allowed destination.

        Raises:
            ComputeError: E2B failed. NotConfigured: E2B refused the key.
        """
        options = spec.options if isinstance(spec.options, self.Options) else self.Options()
        egress: dict[str, Any] = {}
        if not spec.network and self._gateway_host:
            egress["network"] = {"allow_out": [self._gateway_host], "deny_out": ["0.0.0.0/0"]}
        async with VENDOR_ERRORS.translate("create a sandbox"):
            sbx = await self._sdk.create(
                template=options.template or self._template,
                timeout=spec.timeout_minutes * 60,
                allow_internet_access=spec.network,
                **egress,
                envs=dict(spec.env),
                metadata={"cerver_session_id": spec.session_id},
                **self._opts,
            )
            await sbx.commands.run(f"mkdir -p {WORKSPACE}")
        return E2BSandbox(sbx)

    async def attach(self, sandbox_id: str) -> E2BSandbox:
        """Reconnect to a running sandbox. Raises NotFound when E2B no longer has it."""
        async with VENDOR_ERRORS.translate(f"find sandbox {sandbox_id!r}", missing=NotFound):
            return E2BSandbox(await self._sdk.connect(sandbox_id, **self._opts))
