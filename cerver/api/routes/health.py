"""Liveness and readiness (no auth)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Response, status

from cerver.api.deps import GatewayDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(gateway: GatewayDep) -> dict[str, object]:
    return {"status": "ok", "upstream": "mock" if gateway.upstream_is_mock else "configured"}


@router.get("/readyz", responses={503: {"description": "Shutting down: send traffic elsewhere."}})
async def readyz(gateway: GatewayDep, response: Response) -> dict[str, object]:
    """Ready for traffic; 503 from the moment the process is asked to stop (SIGTERM), while
    its running turns finish, so a load balancer sends new requests elsewhere."""
    if gateway.draining:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "shutting_down", "database": gateway.store.db.dialect}
    await gateway.store.db.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())
    return {"status": "ready", "database": gateway.store.db.dialect}
