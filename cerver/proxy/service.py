"""The model proxy of one gateway: run tokens, forwarding, and the sandbox-facing listener.

Flow for one CLI run: the turn calls :meth:`ModelProxy.grant` (which starts the listener on
first use) and hands the grant to the harness; the CLI, inside the sandbox, sends its
requests with the grant's token; :mod:`cerver.proxy.handler` resolves the token, forwards
with the real key and reports each response's usage to the run; the turn revokes the grant
when the run ends, whatever way it ends.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from pathlib import Path

from cerver.proxy.forward import ProxyForwarder
from cerver.proxy.grants import ProxyGrant, ProxyGrants, UsageCallback
from cerver.proxy.listener import ProxyListener, proxy_app

__all__ = ["SOCKET_NAME", "ModelProxy", "runtime_dir"]

SOCKET_NAME = "proxy.sock"


def runtime_dir() -> Path:
    """A fresh path for the listener's socket directory (created when the listener starts).

    Under the system temp directory rather than the data directory: a unix socket path must
    stay under ~100 bytes.
    """
    return Path(tempfile.gettempdir()) / f"cerver-proxy-{secrets.token_hex(6)}"


class ModelProxy:
    """Tokens, forwarder and listener of one gateway process.

    Args:
        forwarder: forwards to the configured upstreams.
        socket_dir: where the listener's socket goes (see :func:`runtime_dir`); local
            sandboxes bind this directory read-only at the same path.
    """

    def __init__(self, forwarder: ProxyForwarder, socket_dir: Path) -> None:
        self.forwarder = forwarder
        self.grants = ProxyGrants()
        self.socket_dir = socket_dir
        self._listener: ProxyListener | None = None
        self._starting = asyncio.Lock()

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / SOCKET_NAME

    async def grant(
        self,
        *,
        run_id: str,
        session_id: str,
        harness: str,
        on_usage: UsageCallback,
        account_id: str | None = None,
    ) -> ProxyGrant:
        """Issue a token for one run, starting the sandbox-facing listener if needed.

        The run's requests are forwarded with ``account_id``'s own provider keys when it has
        stored any, else with the gateway's.

        Raises:
            OSError: the listener could not start.
        """
        async with self._starting:
            if self._listener is None:
                # 0711: a sandbox user may reach the socket by its path, not list the directory.
                self.socket_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
                listener = ProxyListener(proxy_app(self), self.socket_path)
                await listener.start()
                self._listener = listener
        return self.grants.issue(
            run_id=run_id,
            session_id=session_id,
            harness=harness,
            on_usage=on_usage,
            socket_path=str(self.socket_path),
            account_id=account_id,
        )

    def revoke(self, grant: ProxyGrant) -> None:
        """Refuse the grant's token from now on."""
        self.grants.revoke(grant)

    async def release(self, grant: ProxyGrant) -> None:
        """End a run's grant: revoke it and let its last responses finish metering."""
        await self.grants.release(grant)

    async def aclose(self) -> None:
        """Stop the listener, close the pooled clients, remove the socket directory."""
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        await self.forwarder.aclose()
        shutil.rmtree(self.socket_dir, ignore_errors=True)
