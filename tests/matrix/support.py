"""Every compute that can execute on this machine, for the harness × compute matrix and the
walk-the-table example: a gateway served over TCP at its public URL, a relay next to it, and
the vendor doubles (TEST DOUBLES: ``tests/compute/fake_*.py``) driven by the real SDKs.

The doubles' images carry the CLI harnesses in Cerver's tools layout at
:data:`~cerver.cli_programs.IMAGE_TOOLS_DIR` (read-only binds of this machine's installs):
that is what a template, snapshot or image made for Cerver holds at a real vendor. Their
sandboxes share the host's network, so they reach the gateway at its public URL, as a real
vendor sandbox reaches a public gateway. Nothing here models a vendor's isolation.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from cerver.api import create_app
from cerver.cli_programs import (
    CLAUDE_CODE_INSTALL,
    CODEX_INSTALL,
    GEMINI_CLI_INSTALL,
    IMAGE_TOOLS_DIR,
    claude_code_binary,
    codex_prefix,
    host_programs,
)
from cerver.client import AsyncClient
from cerver.gateway import Gateway
from cerver.testing.mock_upstream import MockUpstream
from compute.relay_server import create_relay_app
from tests.conftest import ADMIN_KEY, make_settings

__all__ = [
    "CLI_INSTALLS",
    "COMPUTES",
    "HARNESSES",
    "Doubles",
    "Served",
    "cli_image",
    "doubles",
    "free_port",
    "missing_for",
    "serve_app",
    "served_gateway",
]

HARNESSES = ("anthropic", "openai", "litellm", "pydantic-ai", "claude-code", "codex", "gemini-cli")
COMPUTES = ("local", "relay", "e2b", "modal", "daytona", "vercel")

CLI_INSTALLS = {
    "claude-code": ("The Claude Code CLI", CLAUDE_CODE_INSTALL),
    "codex": ("The Codex CLI", CODEX_INSTALL),
    "gemini-cli": ("The Gemini CLI", GEMINI_CLI_INSTALL),
}
SDK_MODULES = {"litellm": "litellm", "pydantic-ai": "pydantic_ai"}
VENDOR_SDKS = {
    "e2b": ("e2b", "pip install 'cerver[e2b]'"),
    "modal": ("modal", "pip install 'cerver[modal]'"),
    "daytona": ("daytona", "pip install 'cerver[daytona]'"),
    "vercel": ("vercel.sandbox", "pip install 'cerver[vercel]'"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_image() -> dict[str, Path]:
    """The doubles' image: this machine's CLI installs at their tools-layout places."""
    image: dict[str, Path] = {}
    if (binary := claude_code_binary()) is not None:
        image[f"{IMAGE_TOOLS_DIR}/claude-code"] = binary.parent
    if codex_prefix().is_dir():
        image[f"{IMAGE_TOOLS_DIR}/npm"] = codex_prefix()
    return image


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@dataclass
class Doubles:
    """The vendor doubles running, the environment that points the SDKs at them, and why a
    vendor is missing (its SDK not installed)."""

    env: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    fakes: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def doubles(root: Path) -> Iterator[Doubles]:
    """Start every vendor double whose SDK is installed (sync: each serves from a thread)."""
    found = Doubles()
    image = cli_image()
    with contextlib.ExitStack() as stack:
        for vendor, (module, install) in VENDOR_SDKS.items():
            if not _has_module(module):
                found.missing[vendor] = f"the {vendor} SDK is not installed: {install}"
        if "e2b" not in found.missing:
            from tests.compute.fake_e2b import fake_e2b

            fake = stack.enter_context(fake_e2b(root / "e2b", image))
            found.fakes["e2b"] = fake
            found.env |= {
                "E2B_API_KEY": "e2b_test_key",
                "E2B_API_URL": fake.url,
                "E2B_SANDBOX_URL": fake.url,
            }
        if "modal" not in found.missing:
            from tests.compute.fake_modal import TOKEN_ID, TOKEN_SECRET, fake_modal

            fake = stack.enter_context(fake_modal(root / "modal", image))
            found.fakes["modal"] = fake
            found.env |= {
                "MODAL_SERVER_URL": fake.url,
                "MODAL_TOKEN_ID": TOKEN_ID,
                "MODAL_TOKEN_SECRET": TOKEN_SECRET,
            }
        if "daytona" not in found.missing:
            from tests.compute.fake_daytona import API_KEY, fake_daytona

            fake = stack.enter_context(fake_daytona(root / "daytona", image))
            found.fakes["daytona"] = fake
            found.env |= {"DAYTONA_API_KEY": API_KEY, "DAYTONA_API_URL": fake.url}
        if "vercel" not in found.missing:
            from tests.compute.fake_vercel import CREDENTIALS, fake_vercel

            fake = stack.enter_context(fake_vercel(root / "vercel", image))
            found.fakes["vercel"] = fake
            found.env |= {**CREDENTIALS, "CERVER_VERCEL_API_URL": fake.url}
        yield found


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_app(app: Any, port: int, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve an ASGI app on ``host:port`` in this event loop; yields its URL."""
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", ws="none"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task


@dataclass
class Served:
    gateway: Gateway
    client: AsyncClient
    public_url: str
    relay_compute_id: str | None
    relay_root: Path

    def compute(self, name: str) -> dict[str, Any]:
        """The ``compute`` field of a session on ``name``."""
        if name == "relay":
            return {"provider": "relay", "compute_id": self.relay_compute_id}
        return {"provider": name}


@contextlib.asynccontextmanager
async def served_gateway(
    tmp_path: Path,
    mock_upstream: MockUpstream,
    *,
    host: str = "127.0.0.1",
    announce_public_url: bool = True,
) -> AsyncIterator[Served]:
    """A gateway on SQLite served over TCP at its public URL (``CERVER_PUBLIC_URL``, left
    unset with ``announce_public_url=False``), with a relay (``cerver relay``'s app, in this
    process) registered to it."""
    port = free_port()
    public_url = f"http://{host}:{port}"
    settings = make_settings(
        tmp_path / "gateway",
        f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
        mock_upstream,
        public_url=public_url if announce_public_url else None,
    )
    gateway = Gateway(settings)
    await gateway.start()
    relay_token = secrets.token_urlsafe(16)
    relay_root = tmp_path / "relay"
    try:
        async with (
            serve_app(create_app(gateway), port, host),
            serve_app(create_relay_app(relay_token, relay_root), free_port()) as relay_url,
            AsyncClient(public_url, ADMIN_KEY, timeout=300.0) as client,
        ):
            record = await client.register_compute("matrix-relay", relay_url, relay_token)
            yield Served(gateway, client, public_url, record["compute_id"], relay_root)
    finally:
        await gateway.stop()
        shutil.rmtree(relay_root, ignore_errors=True)


def missing_for(harness: str, compute: str, found: Doubles) -> str | None:
    """What this machine lacks for the cell, in words naming the fix; ``None``: nothing."""
    if compute in found.missing:
        return found.missing[compute]
    if harness in SDK_MODULES and not _has_module(SDK_MODULES[harness]):
        return f"the {harness} SDK is not installed: pip install 'cerver[{harness}]'"
    if harness in CLI_INSTALLS and harness not in host_programs():
        what, install = CLI_INSTALLS[harness]
        return f"{what} is not installed: run `{install}`"
    if shutil.which("bwrap") is None:  # local and relay confine with it; the doubles jail
        return "bubblewrap is not installed: run `cerver setup`"
    return None
