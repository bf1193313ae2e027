"""Liveness and readiness (no auth)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter

from cerver.api.deps import GatewayDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(gateway: GatewayDep) -> dict[str, object]:
    return {"status": "ok", "upstream": "mock" if gateway.upstream_is_mock else "configured"}


@router.get("/readyz")
async def readyz(gateway: GatewayDep) -> dict[str, object]:
    await gateway.store.db.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())
    return {"status": "ready", "database": gateway.store.db.dialect}
