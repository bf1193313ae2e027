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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field

from cerver.errors import CerverError, ComputeError, NotConfigured, NotFound
from cerver.options import PluginOptions, PluginSettings, plugin_settings
from compute._remote import IMAGE_NAME, CommandSandbox, RawResult
from compute.base import Capabilities, Compute, Profile, SandboxSpec

__all__ = ["VercelCompute", "VercelSandbox"]

CREDENTIALS = ("VERCEL_TOKEN", "VERCEL_TEAM_ID", "VERCEL_PROJECT_ID")


@asynccontextmanager
async def _translate(
    what: str, *, missing: type[CerverError] = ComputeError
) -> AsyncIterator[None]:
    """Vercel SDK errors → Cerver's: a missing path/sandbox → ``missing``, bad credentials →
    NotConfigured, anything else → ComputeError."""
    from vercel import sandbox as sdk

    try:
        yield
    except CerverError:
        raise
    except sdk.SandboxPathNotFoundError as exc:
        raise missing(f"Vercel: could not {what}: {exc}") from exc
    except sdk.SandboxCredentialsError as exc:
        raise NotConfigured(
            f"Vercel rejected the credentials ({exc}): set {', '.join(CREDENTIALS)}.",
            context={"variables": list(CREDENTIALS)},
        ) from exc
    except Exception as exc:  # the SDK's errors do not share one base class with transport errors
        raise ComputeError(f"Vercel: could not {what}: {type(exc).__name__}: {exc}") from exc


class VercelSandbox(CommandSandbox):
    provider: ClassVar[str] = "vercel"
    workspace: ClassVar[str] = "/vercel/sandbox/workspace"

    def __init__(self, handle: Any) -> None:
        self._sbx = handle
        self.sandbox_id = handle.name

    async def _run(self, command: str, *, timeout: float) -> RawResult:
        async with _translate("run a command"):
            done = await self._sbx.run_process(
                "bash", ["-c", command], capture_output=True, kill_after=timeout
            )
        return RawResult(_text(done.stdout), _text(done.stderr), int(done.returncode))

    async def _read_bytes(self, absolute: str) -> bytes:
        async with _translate(f"read {absolute!r}", missing=NotFound):
            return bytes(await self._sbx.fs.read_bytes(absolute))

    async def _write_bytes(self, absolute: str, data: bytes) -> None:
        parent = shlex.quote(absolute.rsplit("/", 1)[0] or "/")
        await self._run(f"mkdir -p -- {parent}", timeout=30)
        async with _translate(f"write {absolute!r}"):
            await self._sbx.fs.write_bytes(absolute, data)

    async def delete(self) -> None:
        async with _translate("destroy the sandbox"):
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
    credentials: ClassVar[tuple[str, ...]] = CREDENTIALS
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
        async with _translate("create a sandbox"):
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
        async with _translate(f"find sandbox {sandbox_id!r}", missing=NotFound):
            return VercelSandbox(await self._sdk.get_sandbox(name=sandbox_id))
