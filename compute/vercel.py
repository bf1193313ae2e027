"""The ``vercel`` provider: Vercel Sandbox through the official ``vercel`` SDK.

Install with ``pip install 'cerver[vercel]'`` and set ``VERCEL_TOKEN``, ``VERCEL_TEAM_ID`` and
``VERCEL_PROJECT_ID`` (the SDK's own variables); ``CERVER_VERCEL_API_URL`` (Cerver's, the SDK
reads none) points the SDK at another Sandbox API base URL. The SDK is imported when the provider
is built. Commands go through :class:`compute._remote.CommandSandbox` (``run_process`` with
captured output; the service's ``kill_after`` backs up the in-sandbox timeout); files use the
SDK's ``fs.read_bytes`` / ``fs.write_bytes``.

Proven with the unchanged SDK against a local double of the Sandbox API
(``tests/compute/fake_vercel.py``): the conformance suite and a session move through the API.
No Vercel account is reachable from the test environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field

from cerver.errors import ComputeError, ComputeTimeout, NotConfigured, NotFound, SandboxGone
from cerver.options import PluginOptions, PluginSettings, plugin_settings
from compute._remote import IMAGE_NAME, CommandSandbox, RawResult
from compute.base import (
    MISSING,
    Capabilities,
    Compute,
    ExecChunk,
    Profile,
    SandboxSpec,
    VendorErrors,
)

__all__ = ["VercelCompute", "VercelSandbox"]

VENDOR_ERRORS = VendorErrors(
    "Vercel",
    {
        "SandboxPathNotFoundError": (MISSING, False),
        "SandboxCredentialsError": (NotConfigured, False),
        "SandboxTimeoutError": (ComputeTimeout, True),
        "SandboxStreamError": (ComputeError, True),
    },
    credentials=("VERCEL_TOKEN", "VERCEL_TEAM_ID", "VERCEL_PROJECT_ID"),
    statuses={  # SandboxApiError carries the API's answer
        401: (NotConfigured, False),
        403: (NotConfigured, False),
        404: (MISSING, False),
        410: (SandboxGone, False),
        429: (ComputeError, True),
        500: (ComputeError, True),
        502: (ComputeError, True),
        503: (ComputeError, True),
        504: (ComputeError, True),
    },
)
"""The vercel SDK's exceptions as Cerver's (its errors share no base class with the
transport's, which TRANSPORT_ERRORS catch)."""


class VercelSandbox(CommandSandbox):
    provider: ClassVar[str] = "vercel"
    streams_exec: ClassVar[bool] = True
    workspace: ClassVar[str] = "/vercel/sandbox/workspace"

    def __init__(self, handle: Any) -> None:
        self._sbx = handle
        self.sandbox_id = handle.name

    async def _run(self, command: str, *, timeout: float) -> RawResult:
        async with VENDOR_ERRORS.translate("run a command"):
            done = await self._sbx.run_process(
                "bash", ["-c", command], capture_output=True, kill_after=timeout
            )
        return RawResult(_text(done.stdout), _text(done.stderr), int(done.returncode))

    async def exec_stream(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[ExecChunk]:
        """See :meth:`Sandbox.exec_stream`: the command runs detached and its log stream is
        read as it is written; closing the iterator early signals the command's group."""
        line = self._command_line(command, timeout=timeout, env=env)
        async with VENDOR_ERRORS.translate("start a command"):
            process = await self._sbx.create_process("bash", ["-c", line], kill_after=timeout + 10)
        output: asyncio.Queue[ExecChunk | BaseException | None] = asyncio.Queue()

        async def pump(reader: Any, stream: Literal["stdout", "stderr"]) -> None:
            try:
                async for text in reader:
                    await output.put(ExecChunk(stream, text))
            except Exception as exc:  # the vendor's, translated where it is read
                await output.put(exc)
            await output.put(None)

        pumps = [
            asyncio.create_task(pump(process.stdout, "stdout")),
            asyncio.create_task(pump(process.stderr, "stderr")),
        ]
        exited = False
        try:
            open_streams = len(pumps)
            while open_streams:
                item = await output.get()
                if item is None:
                    open_streams -= 1
                elif isinstance(item, BaseException):
                    async with VENDOR_ERRORS.translate("read a command's output"):
                        raise item
                else:
                    yield item
            async with VENDOR_ERRORS.translate("wait for a command"):
                code = await process.wait()
            exited = True
            yield ExecChunk("exit", exit_code=code)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            if not exited:
                with contextlib.suppress(Exception):  # it may have ended meanwhile
                    await asyncio.shield(process.terminate())

    async def _read_bytes(self, absolute: str) -> bytes:
        async with VENDOR_ERRORS.translate(f"read {absolute!r}", missing=NotFound):
            return bytes(await self._sbx.fs.read_bytes(absolute))

    async def _write_bytes(self, absolute: str, data: bytes) -> None:
        parent = shlex.quote(absolute.rsplit("/", 1)[0] or "/")
        await self._run(f"mkdir -p -- {parent}", timeout=30)
        async with VENDOR_ERRORS.translate(f"write {absolute!r}"):
            await self._sbx.fs.write_bytes(absolute, data)

    async def delete(self) -> None:
        """Destroy the sandbox. Idempotent: one Vercel no longer knows is already destroyed."""
        try:
            async with VENDOR_ERRORS.translate("destroy the sandbox", missing=NotFound):
                await self._sbx.destroy()
        except NotFound:
            pass


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class VercelCompute(Compute):
    """Vercel Sandbox microVMs (needs VERCEL_TOKEN, VERCEL_TEAM_ID, VERCEL_PROJECT_ID).

    Args:
        api_url: the Sandbox API base URL; default ``$CERVER_VERCEL_API_URL``, else Vercel's.

    Raises:
        MissingDependency: the ``vercel`` package is not installed.
        NotConfigured: a credential variable is unset.
    """

    name: ClassVar[str] = "vercel"
    sdk_module: ClassVar[str] = "vercel"
    credentials: ClassVar[tuple[str, ...]] = VENDOR_ERRORS.credentials
    vendor_errors: ClassVar[VendorErrors] = VENDOR_ERRORS
    capabilities: ClassVar[Capabilities] = Capabilities(
        runtimes=("shell", "node", "python"),
        package_install=True,
        public_preview=True,
        persistence="low",
        max_timeout_s=5 * 3600,
    )
    profile: ClassVar[Profile] = Profile(startup_ms=800, cost_per_hour_usd=0.13)  # prior

    class Options(PluginOptions):
        """Per session: ``compute: {"provider": "vercel", "options": {"image": "…"}}``."""

        image: str | None = Field(default=None, pattern=IMAGE_NAME, description="Sandbox image.")
        region: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,32}$")

    class Settings(PluginSettings):
        """Gateway-wide defaults: ``CERVER_VERCEL_IMAGE``, ``CERVER_VERCEL_REGION``,
        ``CERVER_VERCEL_API_URL`` (another Sandbox API base URL; the SDK reads none)."""

        image: str | None = None
        region: str | None = None
        api_url: str | None = None

    def __init__(self, *, api_url: str | None = None) -> None:
        sandbox = self._import_sdk("vercel.sandbox")
        self._require_credentials("Vercel credentials")
        from vercel._internal.core.session import SdkSession

        credentials = sandbox.SandboxCredentials(
            token=os.environ["VERCEL_TOKEN"],
            team_id=os.environ["VERCEL_TEAM_ID"],
            project_id=os.environ["VERCEL_PROJECT_ID"],
        )

        async def given() -> Any:
            return credentials

        self._settings = plugin_settings(self.name, self.Settings, api_url=api_url)
        options = sandbox.SandboxServiceOptions(
            base_url=self._settings.api_url, credentials_factory=given
        )
        self._sdk = sandbox
        self._session = SdkSession(service_options={type(options).service_options_key(): options})

    @contextmanager
    def _active(self) -> Iterator[None]:
        """Make this provider's SDK session the active one for a module-level SDK call.

        The SDK finds its API base URL and credentials through the active session; the
        handles it returns keep that session's service, so they work outside this block.
        """
        from vercel._internal.core.session import bind_active_session, reset_active_session

        token = bind_active_session(self._session)
        try:
            yield
        finally:
            reset_active_session(token)

    async def create(self, spec: SandboxSpec) -> VercelSandbox:
        options = spec.options if isinstance(spec.options, self.Options) else self.Options()
        async with VENDOR_ERRORS.translate("create a sandbox"):
            with self._active():
                handle = await self._sdk.create_sandbox(
                    image=options.image or self._settings.image,
                    region=options.region or self._settings.region,
                    execution_time_limit=timedelta(minutes=spec.timeout_minutes),
                    env=dict(spec.env),
                    tags={"cerver_session_id": spec.session_id},
                )
        sandbox = VercelSandbox(handle)
        await sandbox._run(f"mkdir -p {VercelSandbox.workspace}", timeout=30)
        return sandbox

    async def attach(self, sandbox_id: str) -> VercelSandbox:
        async with VENDOR_ERRORS.translate(f"find sandbox {sandbox_id!r}", missing=NotFound):
            with self._active():
                return VercelSandbox(await self._sdk.get_sandbox(name=sandbox_id))

    async def aclose(self) -> None:
        await self._session.aclose()
