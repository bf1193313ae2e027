"""The ``daytona`` provider: Daytona sandboxes through the official ``daytona`` SDK.

Install with ``pip install 'cerver[daytona]'`` and set ``DAYTONA_API_KEY`` (``DAYTONA_API_URL``
for a self-hosted Daytona). The SDK is imported when the provider is built. Commands go through
:class:`compute._remote.CommandSandbox`: Daytona's ``process.exec`` returns stdout and stderr
merged, so stderr is redirected to a file and read back. Files use ``fs.download_file`` /
``fs.upload_file``. Network access follows the spec (``network_block_all``).

Proven with the unchanged SDK against a local double of Daytona's API and toolbox
(``tests/compute/fake_daytona.py``): the conformance suite and a session move through the API.
No Daytona account is reachable from the test environment.
"""

from __future__ import annotations

import math
import os
import secrets
import shlex
from typing import Any, ClassVar

from pydantic import Field

from cerver.errors import ComputeError, ComputeTimeout, NotConfigured, NotFound, SandboxGone
from cerver.options import PluginOptions, PluginSettings, plugin_settings
from compute._remote import IMAGE_NAME, CommandSandbox, RawResult
from compute.base import MISSING, Capabilities, Compute, Profile, SandboxSpec, VendorErrors

__all__ = ["DaytonaCompute", "DaytonaSandbox"]


VENDOR_ERRORS = VendorErrors(
    "Daytona",
    {
        "DaytonaNotFoundError": (MISSING, False),  # includes DaytonaFileNotFoundError
        "DaytonaAuthenticationError": (NotConfigured, False),
        "DaytonaForbiddenError": (NotConfigured, False),  # alias DaytonaAuthorizationError
        "DaytonaRateLimitError": (ComputeError, True),
        "DaytonaConnectionError": (ComputeError, True),
        "DaytonaServiceUnavailableError": (ComputeError, True),
        "DaytonaBadGatewayError": (ComputeError, True),
        "DaytonaInternalServerError": (ComputeError, True),
        "DaytonaSpotEvictedError": (ComputeError, True),
        "DaytonaTimeoutError": (ComputeTimeout, True),
        "DaytonaGoneError": (SandboxGone, False),
    },
    credentials=("DAYTONA_API_KEY",),
)
"""The daytona SDK's exceptions as Cerver's (DaytonaError and the transport's own)."""


class DaytonaSandbox(CommandSandbox):
    provider: ClassVar[str] = "daytona"
    workspace: ClassVar[str] = "/home/daytona/workspace"

    def __init__(self, handle: Any) -> None:
        self._sbx = handle
        self.sandbox_id = handle.id

    async def _run(self, command: str, *, timeout: float) -> RawResult:
        err = f"/tmp/cerver-stderr-{secrets.token_hex(6)}"
        async with VENDOR_ERRORS.translate("run a command"):
            inner = f"bash -c {shlex.quote(command)} 2>{err}"
            done = await self._sbx.process.exec(
                f"bash -c {shlex.quote(inner)}", timeout=math.ceil(timeout)
            )
            stderr = await self._sbx.process.exec(f"bash -c 'cat {err} 2>/dev/null; rm -f {err}'")
        return RawResult(done.result or "", stderr.result or "", int(done.exit_code))

    async def _read_bytes(self, absolute: str) -> bytes:
        async with VENDOR_ERRORS.translate(f"read {absolute!r}", missing=NotFound):
            data = await self._sbx.fs.download_file(absolute)
        return bytes(data or b"")

    async def _write_bytes(self, absolute: str, data: bytes) -> None:
        parent = shlex.quote(absolute.rsplit("/", 1)[0] or "/")
        await self._run(f"mkdir -p -- {parent}", timeout=30)
        async with VENDOR_ERRORS.translate(f"write {absolute!r}"):
            await self._sbx.fs.upload_file(data, absolute)

    async def delete(self) -> None:
        """Delete the sandbox. Idempotent: one Daytona no longer knows is already deleted."""
        try:
            async with VENDOR_ERRORS.translate("delete the sandbox", missing=NotFound):
                await self._sbx.delete()
        except NotFound:
            pass


class DaytonaCompute(Compute):
    """Daytona sandboxes (needs DAYTONA_API_KEY).

    Args:
        api_key: default ``$DAYTONA_API_KEY``. api_url: default ``$DAYTONA_API_URL`` or
            Daytona's cloud.

    Raises:
        MissingDependency: the ``daytona`` package is not installed.
        NotConfigured: no API key.
    """

    name: ClassVar[str] = "daytona"
    sdk_module: ClassVar[str] = "daytona"
    credentials: ClassVar[tuple[str, ...]] = VENDOR_ERRORS.credentials
    vendor_errors: ClassVar[VendorErrors] = VENDOR_ERRORS
    capabilities: ClassVar[Capabilities] = Capabilities(
        runtimes=("shell", "python", "node"),
        package_install=True,
        public_preview=True,
        persistence="high",
        max_timeout_s=24 * 3600,
    )
    profile: ClassVar[Profile] = Profile(startup_ms=250, cost_per_hour_usd=0.08)  # prior

    class Options(PluginOptions):
        """Per session: ``compute: {"provider": "daytona", "options": {"snapshot": "…"}}``."""

        snapshot: str | None = Field(
            default=None, pattern=IMAGE_NAME, description="Daytona snapshot."
        )

    class Settings(PluginSettings):
        """Gateway-wide default: ``CERVER_DAYTONA_SNAPSHOT``."""

        snapshot: str | None = None

    def __init__(self, api_key: str | None = None, *, api_url: str | None = None) -> None:
        daytona = self._import_sdk("daytona")
        self._require_credentials("Daytona API key", {"DAYTONA_API_KEY": api_key})
        api_key = api_key or os.environ["DAYTONA_API_KEY"]
        self._sdk = daytona
        self._settings = plugin_settings(self.name, self.Settings)
        self._client = daytona.AsyncDaytona(
            daytona.DaytonaConfig(
                api_key=api_key, api_url=api_url or os.environ.get("DAYTONA_API_URL")
            )
        )

    async def create(self, spec: SandboxSpec) -> DaytonaSandbox:
        options = spec.options if isinstance(spec.options, self.Options) else self.Options()
        params = self._sdk.CreateSandboxFromSnapshotParams(
            snapshot=options.snapshot or self._settings.snapshot,
            env_vars=dict(spec.env),
            labels={"cerver_session_id": spec.session_id},
            network_block_all=not spec.network,
            auto_stop_interval=spec.timeout_minutes,
        )
        async with VENDOR_ERRORS.translate("create a sandbox"):
            handle = await self._client.create(params, timeout=120)
        sandbox = DaytonaSandbox(handle)
        await sandbox._run(f"mkdir -p {DaytonaSandbox.workspace}", timeout=30)
        return sandbox

    async def attach(self, sandbox_id: str) -> DaytonaSandbox:
        async with VENDOR_ERRORS.translate(f"find sandbox {sandbox_id!r}", missing=NotFound):
            return DaytonaSandbox(await self._client.get(sandbox_id))

    async def aclose(self) -> None:
        await self._client.close()
