"""Stress tests: ``POST /v2/stress-tests`` (simulated from profiles, or live canaries)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cerver.api.contract import PLACEMENT, errors
from cerver.api.deps import AccountDep, GatewayDep
from cerver.api.schemas.computes import StressTestCreate
from cerver.services.stress import StressSpec

router = APIRouter(prefix="/v2/stress-tests", tags=["compute"])


def stress_spec(body: StressTestCreate) -> StressSpec:
    return StressSpec(
        task=body.task,
        kind=body.kind,
        workload=body.workload,
        requirements=body.requirements.model_dump(exclude_none=True) if body.requirements else {},
        providers=body.providers,
        sample_size=body.sample_size,
        mode=body.mode,
    )


@router.post("", responses=errors(*PLACEMENT))
async def create_stress_test(
    body: StressTestCreate, gateway: GatewayDep, account: AccountDep
) -> dict[str, Any]:
    """Rank providers for a workload: p50/p95 startup and exec latency, failures, cost,
    score. ``live`` provisions real sandboxes and teaches the router what it measured."""
    return await gateway.stress.run(account.id, stress_spec(body))
