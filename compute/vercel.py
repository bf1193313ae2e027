"""The ``vercel`` provider: Vercel Sandbox through the official ``vercel`` SDK.

Install with ``pip install 'cerver[vercel]'`` and set ``VERCEL_TOKEN``, ``VERCEL_TEAM_ID`` and
``VERCEL_PROJECT_ID`` (the SDK's own variables). The SDK is imported when the provider is built.
Commands go through :class:`compute._remote.CommandSandbox` (``run_process`` with captured
output; the service's ``kill_after`` backs up the in-sandbox timeout); files use the SDK's
``fs.read_bytes`` / ``fs.write_bytes``.

Verified here only up to the SDK boundary (construction, credentials, error translation): no
Vercel account is reachable from the test environment.
"""

from __future__ import annotations

import shlex
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field

from cerver.errors import ComputeError, ComputeTimeout, NotConfigured, NotFound
from cerver.options import PluginOptions, PluginSettings, plugin_settings
from compute._remote import IMAGE_NAME, CommandSandbox, RawResult
from compute.base import MISSING, Capabilities, Compute, Profile, SandboxSpec, VendorErrors

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
)
"""The vercel SDK's exceptions as Cerver's (its errors share no base class with the
transport's, which TRANSPORT_ERRORS catch)."""


class VercelSandbox(CommandSandbox):
    provider: ClassVar[str] = "vercel"
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

    async def _read_bytes(self, absolute: str) -> bytes:
        async with VENDOR_ERRORS.translate(f"read {absolute!r}", missing=NotFound):
            return bytes(await self._sbx.fs.read_bytes(absolute))

    async def _write_bytes(self, absolute: str, data: bytes) -> None:
        parent = shlex.quote(absolute.rsplit("/", 1)[0] or "/")
        await self._run(f"mkdir -p -- {parent}", timeout=30)
        async with VENDOR_ERRORS.translate(f"write {absolute!r}"):
            await self._sbx.fs.write_bytes(absolute, data)

    async def delete(self) -> None:
        async with VENDOR_ERRORS.translate("destroy the sandbox"):
            await self._sbx.destroy()


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class VercelCompute(Compute):
    """Vercel Sandbox microVMs (needs VERCEL_TOKEN, VERCEL_TEAM_ID, VERCEL_PROJECT_ID).

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
        """Gateway-wide defaults: ``CERVER_VERCELIMAGE_NAME``, ``CERVER_VERCEL_REGION``."""

        image: str | None = None
        region: str | None = None

    def __init__(self) -> None:
        sandbox = self._import_sdk("vercel.sandbox")
        self._require_credentials("Vercel credentials")
        self._sdk = sandbox
        self._settings = plugin_settings(self.name, self.Settings)

    async def create(self, spec: SandboxSpec) -> VercelSandbox:
        options = spec.options if isinstance(spec.options, self.Options) else self.Options()
        async with VENDOR_ERRORS.translate("create a sandbox"):
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
            return VercelSandbox(await self._sdk.get_sandbox(name=sandbox_id))
