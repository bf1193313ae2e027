"""The model proxy of one gateway: run tokens, forwarding, and the sandbox-facing listener.

Flow for one CLI run: the turn calls :meth:`ModelProxy.grant` (which starts the listener on
first use) and hands the grant to the harness; the CLI, inside the sandbox, sends its
requests with the grant's token; :mod:`cerver.proxy.handler` resolves the token, forwards
with the real key and reports each response's usage to the run; the turn revokes the grant
when the run ends, whatever way it ends.

With a :class:`~cerver.store.grants.GrantStore` every grant is also stored (hashed), and a
token this process did not issue is looked up there: any replica on the same database serves
a run's requests (a remote sandbox reaching the gateway's public URL through a load
balancer), and their usage goes straight to the run's ledger. A grant revoked, expired, or
whose run has ended is refused by every replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from cerver.errors import AuthenticationFailed
from cerver.proxy.app_tools import AppToolsServer, ToolsOfRun
from cerver.proxy.forward import ProxyForwarder
from cerver.proxy.grants import DEFAULT_TTL_S, ProxyCall, ProxyGrant, ProxyGrants, UsageCallback
from cerver.proxy.listener import ProxyListener, proxy_app
from cerver.store.grants import GrantStore, StoredGrant
from cerver.store.schema import utcnow
from cerver.types import Usage
from harnesses.tools import ToolSpec

log = logging.getLogger("cerver.proxy")

__all__ = ["SOCKET_NAME", "ModelProxy", "runtime_dir"]

SOCKET_NAME = "proxy.sock"
ENDED_POLL_S = 1.0
"""How often :meth:`ModelProxy.until_ended` asks the store about another replica's grant."""


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
        store: where grants are shared with the other replicas; ``None``: this process
            alone serves its grants.
        public_url: the gateway's public URL, put on every grant for remote sandboxes.
        tools_of: the app's tools offered with a run, served to its CLI by
            :attr:`app_tools` (``None``: no run is offered any).
    """

    def __init__(
        self,
        forwarder: ProxyForwarder,
        socket_dir: Path,
        store: GrantStore | None = None,
        *,
        public_url: str | None = None,
        tools_of: ToolsOfRun | None = None,
    ) -> None:
        self.forwarder = forwarder
        self.public_url = public_url.rstrip("/") if public_url else None
        self.grants = ProxyGrants()
        self.socket_dir = socket_dir
        self._store = store
        self._listener: ProxyListener | None = None
        self._starting = asyncio.Lock()
        self._charging: set[asyncio.Task[None]] = set()
        self.app_tools = AppToolsServer(self, tools_of or _no_tools)

    @property
    def shares_grants(self) -> bool:
        """Whether other replicas may serve this process's grants (a store is shared)."""
        return self._store is not None

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
        issued = self.grants.issue(
            run_id=run_id,
            session_id=session_id,
            harness=harness,
            on_usage=on_usage,
            socket_path=str(self.socket_path),
            account_id=account_id,
            public_url=self.public_url,
        )
        if self._store is not None:
            await self._store.put(
                issued.token,
                run_id=run_id,
                session_id=session_id,
                account_id=account_id,
                harness=harness,
                ttl_s=DEFAULT_TTL_S,
            )
        return issued

    async def begin(self, token: str | None) -> ProxyCall:
        """The call of one proxied request: a grant of this process (metered through its
        run's callback), else a live stored grant (metered straight to the ledger).

        Raises:
            AuthenticationFailed: no token, or one that no replica issued, or revoked,
                expired, or whose run has ended.
        """
        try:
            return self.grants.begin(token)
        except AuthenticationFailed as refused:
            grant, stored = await self._shared(token, refused)
        return ProxyCall.detached(grant, self._ledger_callback(stored))

    async def authorize(self, token: str | None) -> ProxyGrant:
        """The live grant behind ``token`` (this process's, else a stored one), without
        counting a request in flight: for the app-tools server, whose calls are parked until
        the run ends and must not hold up :meth:`release`.

        Raises:
            AuthenticationFailed: as :meth:`begin`.
        """
        try:
            return self.grants.resolve(token)[0]
        except AuthenticationFailed as refused:
            grant, _ = await self._shared(token, refused)
        return grant

    async def _shared(
        self, token: str | None, refused: AuthenticationFailed
    ) -> tuple[ProxyGrant, StoredGrant]:
        """The live stored grant behind a token this process does not hold (another
        replica issued it), or raise ``refused``."""
        if self._store is None or not token:
            raise refused
        stored = await self._store.live(token)
        if stored is None:
            raise refused
        return _grant_of(token, stored), stored

    async def until_ended(self, grant: ProxyGrant) -> None:
        """Return once ``grant``'s run has released it, on whichever replica issued it (a
        grant of another replica is looked up every :data:`ENDED_POLL_S` seconds)."""
        if grant.token in self.grants:
            await self.grants.until_ended(grant)
            return
        if self._store is None:
            return
        # Another replica ends it in the store: no event reaches this process.
        while await self._store.live(grant.token) is not None:  # noqa: ASYNC110
            await asyncio.sleep(ENDED_POLL_S)

    def _ledger_callback(self, stored: StoredGrant) -> UsageCallback:
        store = self._store
        assert store is not None

        def on_usage(model: str, provider: str, usage: Usage, latency_ms: float) -> None:
            charge = store.charge(
                stored, usage=usage, model=model, provider=provider, latency_ms=latency_ms
            )
            task = asyncio.get_running_loop().create_task(charge)
            self._charging.add(task)
            task.add_done_callback(self._charged)

        return on_usage

    def _charged(self, task: asyncio.Task[None]) -> None:
        self._charging.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("could not record a proxied call's usage: %r", exc)

    async def settle(self) -> None:
        """Wait until the usage of requests served for other replicas' grants is written."""
        while self._charging:
            await asyncio.gather(*self._charging, return_exceptions=True)

    def revoke(self, grant: ProxyGrant) -> None:
        """Refuse the grant's token from now on (in this process; see :meth:`release`)."""
        self.grants.revoke(grant)

    async def release(self, grant: ProxyGrant) -> None:
        """End a run's grant on every replica: revoke it and let its last responses here
        finish metering."""
        if self._store is not None:
            with contextlib.suppress(Exception):  # the run's end also kills it
                await self._store.revoke(grant.token)
        await self.grants.release(grant)

    async def aclose(self) -> None:
        """Stop the listener, close the pooled clients, remove the socket directory."""
        await self.settle()
        await self.app_tools.aclose()
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        await self.forwarder.aclose()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


async def _no_tools(grant: ProxyGrant) -> Sequence[ToolSpec]:
    del grant
    return ()


def _grant_of(token: str, stored: StoredGrant) -> ProxyGrant:
    """The :class:`ProxyGrant` of a stored grant (no socket: it was issued elsewhere)."""
    remaining = (stored.expires_at - utcnow()).total_seconds()
    return ProxyGrant(
        token=token,
        run_id=stored.run_id,
        session_id=stored.session_id,
        harness=stored.harness,
        expires_at=time.monotonic() + remaining,
        account_id=stored.account_id,
    )
