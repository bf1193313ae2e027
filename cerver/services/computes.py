"""Registered computes: relay machines an account adds, their heartbeats and liveness.

A compute is ``online`` while its last heartbeat is younger than ``heartbeat_timeout_s``;
after that it is ``offline`` and the router does not send new sessions to it. Liveness is
derived at read time from the stored heartbeat, so every gateway process agrees on it.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import httpx

from cerver.errors import InvalidRequest
from cerver.ids import new_id
from cerver.registry import compute_registry
from cerver.store import ComputeRecord, Store
from cerver.store.schema import utcnow
from cerver.types import RelayEndpoint

__all__ = ["ComputeService"]


class ComputeService:
    def __init__(self, store: Store, *, heartbeat_timeout_s: float = 90.0) -> None:
        self._store = store
        self.heartbeat_timeout_s = heartbeat_timeout_s

    def online(self, record: ComputeRecord) -> bool:
        if record.last_heartbeat_at is None:
            return False
        age = utcnow() - record.last_heartbeat_at
        return age < timedelta(seconds=self.heartbeat_timeout_s)

    def public(self, record: ComputeRecord) -> dict[str, Any]:
        """The compute as the API shows it (never its token)."""
        return {
            "compute_id": record.id,
            "label": record.label,
            "provider": "relay",
            "base_url": record.base_url,
            "capabilities": record.capabilities,
            "status": "online" if self.online(record) else "offline",
            "last_heartbeat_at": record.last_heartbeat_at,
            "created_at": record.created_at,
        }

    async def register(
        self,
        account_id: str,
        *,
        label: str,
        base_url: str,
        token: str,
        capabilities: dict[str, Any] | None = None,
        probe: bool = True,
    ) -> ComputeRecord:
        """Register a relay after checking it answers ``GET /healthz``.

        Raises:
            InvalidRequest: the relay is unreachable or not a Cerver relay (the message says
                what to check).
        """
        base_url = base_url.rstrip("/")
        caps = dict(capabilities or {})
        if probe:
            caps = {**(await self._probe(base_url)), **caps}
        return await self._store.computes.create(
            {
                "id": new_id("cmp"),
                "account_id": account_id,
                "label": label,
                "base_url": base_url,
                "token": token,
                "capabilities": caps,
            }
        )

    async def _probe(self, base_url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(f"{base_url}/healthz")
            body = response.json()
            return dict(body["capabilities"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise InvalidRequest(
                f"No Cerver relay answers at {base_url}/healthz ({type(exc).__name__}). Start "
                "one with `cerver relay --port N --token T` and register the URL the gateway "
                "can reach it at.",
                context={"base_url": base_url},
            ) from exc

    async def list(self, account_id: str) -> list[ComputeRecord]:
        return await self._store.computes.list(account_id)

    async def get(self, account_id: str, compute_id: str) -> ComputeRecord:
        return await self._store.computes.get(account_id, compute_id)

    async def heartbeat(self, account_id: str, compute_id: str) -> ComputeRecord:
        return await self._store.computes.heartbeat(account_id, compute_id, utcnow())

    async def delete(self, account_id: str, compute_id: str) -> None:
        await self._store.computes.delete(account_id, compute_id)

    async def pick_online(self, account_id: str) -> ComputeRecord | None:
        """The account's most recently heard-from online compute, if any."""
        online = [r for r in await self.list(account_id) if self.online(r)]
        online.sort(key=lambda r: r.last_heartbeat_at or r.created_at, reverse=True)
        return online[0] if online else None

    async def endpoint(self, compute_id: str) -> RelayEndpoint:
        """Where a compute is reached (the relay provider's resolver). Raises NotFound."""
        record = await self._store.computes.get(None, compute_id)
        return RelayEndpoint(record.base_url, record.token)

    @staticmethod
    def default_capabilities() -> dict[str, Any]:
        return dataclasses.asdict(compute_registry.load("relay").capabilities)
