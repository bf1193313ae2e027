"""Spend and tokens from the ledger, grouped so an app can bill its end users in one query."""

from __future__ import annotations

from fastapi import APIRouter

from cerver.api.deps import AccountDep, GatewayDep
from cerver.api.params import Timestamp
from cerver.api.schemas.usage import UsagePublic, UsageRow
from cerver.services.metrics import unpriced_note
from cerver.store.ledger import UsageGroup

router = APIRouter(prefix="/v2", tags=["usage"])


@router.get("/usage")
async def get_usage(
    gateway: GatewayDep,
    account: AccountDep,
    group_by: UsageGroup = "user",
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    user: str | None = None,
) -> UsagePublic:
    """Tokens and USD per ``group_by`` value (``user``, ``model``, ``harness``, ``provider``,
    ``day``, ``session``) over ``[since, until)``, optionally for one ``user``.

    ``cost_usd`` adds up priced calls only (``None`` when none was priced); ``unpriced_calls``
    counts calls whose model has no known price (their tokens are included), and ``cost_note``
    says so whenever the total leaves some out.
    """
    rows = [
        UsageRow.model_validate(r)
        for r in await gateway.store.ledger.usage(
            account.id, group_by, since=since, until=until, user=user
        )
    ]
    priced = [r.cost_usd for r in rows if r.cost_usd is not None]
    total = UsageRow(
        key=None,
        calls=sum(r.calls for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        cost_usd=sum(priced) if priced else None,
        unpriced_calls=sum(r.unpriced_calls for r in rows),
    )
    return UsagePublic(
        group_by=group_by,
        since=since,
        until=until,
        user=user,
        rows=rows,
        total=total,
        cost_note=unpriced_note(total.unpriced_calls, "cost_usd"),
    )
