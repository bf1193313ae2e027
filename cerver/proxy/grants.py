"""Short-lived proxy tokens: one per CLI run, scoped to that run, revoked when it ends.

A token is a random secret (``cpx_…``) the gateway hands to a CLI in place of a provider
key. It names exactly one run and session; requests carrying it are metered to that run
through the ``on_usage`` callback the turn registered with it. This module holds the tokens
of the gateway process that issued them (with their callbacks and requests in flight); the
store holds them too, hashed (:mod:`cerver.store.grants`), so that another replica on the same
database can serve a request made with one (:class:`cerver.proxy.service.ModelProxy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from cerver.errors import AuthenticationFailed
from cerver.types import ProxyGrant, Usage

__all__ = [
    "DEFAULT_TTL_S",
    "TOKEN_PREFIX",
    "ProxyCall",
    "ProxyGrant",
    "ProxyGrants",
    "UsageCallback",
]

TOKEN_PREFIX: Final = "cpx_"
DEFAULT_TTL_S: Final = 3600.0
"""A grant's lifetime: longer than any CLI run's timeout; runs release their grant when they end."""

UsageCallback = Callable[[str, str, Usage, float], None]
"""``on_usage(model, provider, usage, latency_ms)``: one metered upstream request."""


@dataclass(slots=True)
class _Active:
    grant: ProxyGrant
    on_usage: UsageCallback
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.idle.set()


@dataclass(slots=True)
class ProxyCall:
    """One proxied request of a run: its grant, its usage callback, and its end."""

    grant: ProxyGrant
    on_usage: UsageCallback
    _active: _Active
    _ended: bool = False

    @classmethod
    def detached(cls, grant: ProxyGrant, on_usage: UsageCallback) -> ProxyCall:
        """A call of a grant this process did not issue (served from the store): nothing
        here waits for it to end."""
        return cls(grant, on_usage, _Active(grant, on_usage, in_flight=1))

    def end(self) -> None:
        """The request is over (its usage, if any, was reported). Idempotent."""
        if not self._ended:
            self._ended = True
            self._active.in_flight -= 1
            if self._active.in_flight == 0:
                self._active.idle.set()


class ProxyGrants:
    """The live tokens of one gateway process."""

    def __init__(self) -> None:
        self._active: dict[str, _Active] = {}

    def issue(
        self,
        *,
        run_id: str,
        session_id: str,
        harness: str,
        on_usage: UsageCallback,
        socket_path: str | None = None,
        account_id: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        public_url: str | None = None,
    ) -> ProxyGrant:
        """Create a token for one run; usage of requests made with it goes to ``on_usage``."""
        self._expire()
        grant = ProxyGrant(
            token=TOKEN_PREFIX + secrets.token_urlsafe(32),
            run_id=run_id,
            session_id=session_id,
            harness=harness,
            expires_at=time.monotonic() + ttl_s,
            socket_path=socket_path,
            account_id=account_id,
            public_url=public_url,
        )
        self._active[grant.token] = _Active(grant, on_usage)
        return grant

    def revoke(self, grant: ProxyGrant) -> None:
        """Refuse the token from now on. Idempotent."""
        self._end(grant.token)

    async def release(self, grant: ProxyGrant, *, grace_s: float = 5.0) -> None:
        """Revoke the token, then wait (at most ``grace_s``) for its requests still streaming
        to end, so that their usage is reported while the run can still record it."""
        active = self._end(grant.token)
        if active is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await active.idle.wait()

    def resolve(self, token: str | None) -> tuple[ProxyGrant, UsageCallback]:
        """The grant behind ``token`` and its usage callback.

        Raises:
            AuthenticationFailed: no token, or one that is unknown, revoked or expired.
        """
        active = self._active.get(token or "")
        if active is None or active.grant.expires_at <= time.monotonic():
            raise AuthenticationFailed(
                "The model proxy needs a live run token (x-api-key or Authorization: Bearer); "
                "tokens are issued to CLI harness runs and revoked when the run ends.",
                context={"token_prefix": (token or "")[:8]},
            )
        return active.grant, active.on_usage

    async def until_ended(self, grant: ProxyGrant) -> None:
        """Return once ``grant`` is revoked, released or expired (at once if it is)."""
        active = self._active.get(grant.token)
        if active is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(active.grant.expires_at - time.monotonic(), 0.0)):
                await active.ended.wait()

    def begin(self, token: str | None) -> ProxyCall:
        """:meth:`resolve` the token and count a request as in flight until its ``end()``.

        Raises:
            AuthenticationFailed: see :meth:`resolve`.
        """
        grant, on_usage = self.resolve(token)
        active = self._active[grant.token]
        active.in_flight += 1
        active.idle.clear()
        return ProxyCall(grant, on_usage, active)

    def __len__(self) -> int:
        return len(self._active)

    def __contains__(self, token: object) -> bool:
        return token in self._active

    def _end(self, token: str) -> _Active | None:
        active = self._active.pop(token, None)
        if active is not None:
            active.ended.set()
        return active

    def _expire(self) -> None:
        now = time.monotonic()
        for token in [t for t, a in self._active.items() if a.grant.expires_at <= now]:
            self._end(token)
