"""Prometheus at ``GET /metrics`` (no auth, like ``/healthz``: no label holds a secret, an
account or anything an end user wrote). The seed's per-session metrics are
``GET /v2/sessions/{id}/metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from cerver.api.deps import GatewayDep
from cerver.telemetry import metrics

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, include_in_schema=True)
async def prometheus_metrics(gateway: GatewayDep) -> Response:
    """This process's counters and histograms in the Prometheus text format; the session
    gauge is read from the shared store at scrape time."""
    metrics.set_sessions_by_status(await gateway.store.sessions.count_by_status())
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
