"""The ``modal`` provider: Modal Sandboxes through the official ``modal`` SDK.

Install with ``pip install 'cerver[modal]'`` and set ``MODAL_TOKEN_ID`` and
``MODAL_TOKEN_SECRET``. The SDK is imported when the provider is built. Sandboxes belong to the
Modal app ``cerver`` (created if missing); network follows the spec (``block_network``).
Commands go through :class:`compute._remote.CommandSandbox` (``Sandbox.exec`` to completion);
files travel as base64 through commands.

Each provider opens its own Modal client (``MODAL_SERVER_URL`` picks the server, as for the
SDK). Proven with the unchanged SDK against a local gRPC double of Modal's control plane and
task command router (``tests/compute/fake_modal.py``): the conformance suite and a session move
through the API. No Modal account is reachable from the test environment.
"""

from __future__ import annotations

import math
import os
from typing import Any, ClassVar

from pydantic import Field

from cerver.errors import ComputeError, ComputeTimeout, NotConfigured, NotFound, SandboxGone
from cerver.options import PluginOptions, PluginSettings, plugin_settings
from compute._remote import IMAGE_NAME, CommandSandbox, RawResult
from compute.base import MISSING, Capabilities, Compute, Profile, SandboxSpec, VendorErrors

__all__ = ["ModalCompute", "ModalSandbox"]

APP_NAME = "cerver"


VENDOR_ERRORS = VendorErrors(
    "Modal",
    {
        "NotFoundError": (MISSING, False),
        "AuthError": (NotConfigured, False),
        "PermissionDeniedError": (NotConfigured, False),
        "ResourceExhaustedError": (ComputeError, True),
        "ConnectionError": (ComputeError, True),
        "InternalFailure": (ComputeError, True),
        "TimeoutError": (ComputeTimeout, True),  # modal.exception's: sandbox and exec timeouts
        "SandboxTerminatedError": (SandboxGone, False),
    },
    credentials=("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"),
)
"""The modal SDK's exceptions as Cerver's (modal.exception.Error and grpc transport errors)."""


class ModalSandbox(CommandSandbox):
    provider: ClassVar[str] = "modal"
    workspace: ClassVar[str] = "/workspace"

    def __init__(self, handle: Any) -> None:
        self._sbx = handle
        self.sandbox_id = handle.object_id

    async def _run(self, command: str, *, timeout: float) -> RawResult:
        async with VENDOR_ERRORS.translate("run a command"):
            # Bytes, not text: the SDK's own decoding is strict and fails on invalid UTF-8.
            process = await self._sbx.exec.aio(
                "bash", "-c", command, timeout=math.ceil(timeout), text=False
            )
            code = await process.wait.aio()
            stdout = await process.stdout.read.aio()
            stderr = await process.stderr.read.aio()
        return RawResult(
            stdout.decode(errors="replace"), stderr.decode(errors="replace"), int(code)
        )

    async def delete(self) -> None:
        """Terminate the sandbox. Idempotent: terminating a terminated sandbox is a no-op."""
        async with VENDOR_ERRORS.translate("terminate the sandbox"):
            await self._sbx.terminate.aio()


class ModalCompute(Compute):
    """Modal Sandboxes (needs MODAL_TOKEN_ID and MODAL_TOKEN_SECRET).

    Raises:
        MissingDependency: the ``modal`` package is not installed.
        NotConfigured: a token variable is unset.
    """

    name: ClassVar[str] = "modal"
    sdk_module: ClassVar[str] = "modal"
    credentials: ClassVar[tuple[str, ...]] = VENDOR_ERRORS.credentials
    vendor_errors: ClassVar[VendorErrors] = VENDOR_ERRORS
    capabilities: ClassVar[Capabilities] = Capabilities(
        runtimes=("shell", "python"),
        package_install=True,
        public_preview=True,
        persistence="low",
        max_timeout_s=24 * 3600,
    )
    profile: ClassVar[Profile] = Profile(startup_ms=1500, cost_per_hour_usd=0.15)  # prior

    class Options(PluginOptions):
        """Per session: ``compute: {"provider": "modal", "options": {"image": "python:3.12"}}``
        (a registry image)."""

        image: str | None = Field(default=None, pattern=IMAGE_NAME, description="Registry image.")

    class Settings(PluginSettings):
        """Gateway-wide default: ``CERVER_MODALIMAGE_NAME``."""

        image: str | None = None

    def __init__(self) -> None:
        modal = self._import_sdk("modal")
        self._require_credentials("Modal token")
        self._sdk = modal
        self._settings = plugin_settings(self.name, self.Settings)
        self._client: Any = None

    async def _connected(self) -> Any:
        """This provider's own Modal client (not the SDK's process-wide one), opened once
        with the tokens from the environment and ``MODAL_SERVER_URL``'s server."""
        if self._client is None:
            self._client = await self._sdk.Client.from_credentials.aio(
                os.environ["MODAL_TOKEN_ID"], os.environ["MODAL_TOKEN_SECRET"]
            )
        return self._client

    async def create(self, spec: SandboxSpec) -> ModalSandbox:
        options = spec.options if isinstance(spec.options, self.Options) else self.Options()
        image = options.image or self._settings.image
        async with VENDOR_ERRORS.translate("create a sandbox"):
            client = await self._connected()
            app = await self._sdk.App.lookup.aio(APP_NAME, create_if_missing=True, client=client)
            handle = await self._sdk.Sandbox.create.aio(
                app=app,
                client=client,
                image=self._sdk.Image.from_registry(image) if image else None,
                timeout=spec.timeout_minutes * 60,
                env=dict(spec.env),
                block_network=not spec.network,
                workdir=ModalSandbox.workspace,
            )
        return ModalSandbox(handle)

    async def attach(self, sandbox_id: str) -> ModalSandbox:
        async with VENDOR_ERRORS.translate(f"find sandbox {sandbox_id!r}", missing=NotFound):
            handle = await self._sdk.Sandbox.from_id.aio(sandbox_id, client=await self._connected())
            finished = await handle.poll.aio()
        # Modal keeps a terminated sandbox's record; for Cerver it no longer exists.
        if finished is not None:
            raise NotFound(
                f"Modal sandbox {sandbox_id!r} has terminated (exit {finished}).",
                context={"sandbox_id": sandbox_id},
            )
        return ModalSandbox(handle)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close.aio()
