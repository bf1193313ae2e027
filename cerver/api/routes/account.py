"""The account's per-turn routing policy and spending limits."""

from __future__ import annotations

from fastapi import APIRouter

from cerver.api.deps import AccountDep, GatewayDep
from cerver.api.schemas.account import (
    BudgetsPublic,
    BudgetsUpdate,
    RoutingPolicyPublic,
    RoutingPolicyUpdate,
)
from cerver.services.budgets import validate_budgets
from cerver.services.model_routing import PRESETS, parse_policy

router = APIRouter(prefix="/v2/account", tags=["account"])


@router.get("/routing-policy")
async def get_routing_policy(gateway: GatewayDep, account: AccountDep) -> RoutingPolicyPublic:
    fresh = await gateway.store.accounts.get(account.id)  # the auth cache may be older
    return RoutingPolicyPublic(routing_policy=fresh.routing_policy, presets=list(PRESETS))


@router.put("/routing-policy")
async def put_routing_policy(
    body: RoutingPolicyUpdate, gateway: GatewayDep, account: AccountDep
) -> RoutingPolicyPublic:
    """Set (or, with ``null``, clear) the rules that pick each turn's model and harness."""
    policy = parse_policy(body.routing_policy)
    stored = policy.model_dump(exclude_none=True) if policy is not None else None
    await gateway.store.accounts.set_routing_policy(account.id, stored)
    return RoutingPolicyPublic(routing_policy=stored, presets=list(PRESETS))


@router.get("/budgets")
async def get_budgets(gateway: GatewayDep, account: AccountDep) -> BudgetsPublic:
    fresh = await gateway.store.accounts.get(account.id)  # the auth cache may be older
    return BudgetsPublic.model_validate(fresh.budgets or {})


@router.put("/budgets")
async def put_budgets(
    body: BudgetsUpdate, gateway: GatewayDep, account: AccountDep
) -> BudgetsPublic:
    """Set the end users' spending limits (the whole document: omitted users lose theirs)."""
    budgets = validate_budgets(body.model_dump())
    await gateway.store.accounts.set_budgets(account.id, budgets)
    return BudgetsPublic.model_validate(budgets)
