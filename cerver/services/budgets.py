"""Spending limits: a session's ``max_cost_usd`` and each end user's, checked before a turn.

Two limits apply to a turn, both in USD of priced LLM and compute spend from the ledger (calls
whose price is unknown count 0, and are reported as unpriced by ``GET /v2/usage``):

* the session's own ``max_cost_usd`` (set at creation), over everything the session spent,
  including what its fan-outs' variants spent in their child sessions;
* its end user's limit, over everything that user's sessions spent on the account: the
  account's ``budgets.users[user]``, else ``budgets.default_user_max_cost_usd``.

A turn starts only while spend is under the limit: a turn that would *start* over budget is
refused with :class:`~cerver.errors.BudgetExceeded` (402 ``budget_exceeded``) before anything
is written or any model is called. One turn may end above the limit; the next is refused.

A fan-out of N variants counts as N turns run one after the other: it starts only if the last
of them would still start under the limit, i.e. ``spent + (N - 1) × estimate < limit``, where
``estimate`` is the mean cost of the session's earlier turns (0 before its first priced turn).
Call :meth:`BudgetService.ensure_within_budget` with ``turns=N``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cerver.errors import BudgetExceeded, InvalidRequest
from cerver.store import SessionRecord, Store
from cerver.store.records import AccountRecord

__all__ = ["BudgetService", "Limit", "validate_budgets"]


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit that applies to a session: what it covers and its amount."""

    scope: str  # "session" | "user"
    max_cost_usd: float
    spent_usd: float


class BudgetService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def limits(
        self, session: SessionRecord, account: AccountRecord | None = None
    ) -> list[Limit]:
        """The limits that apply to ``session``, with what was spent against each."""
        ledger = self._store.ledger
        found: list[Limit] = []
        if session.max_cost_usd is not None:
            spent = await ledger.spent_with_fanouts(session.account_id, session.id)
            found.append(Limit("session", session.max_cost_usd, spent))
        if session.user is not None:
            account = account or await self._store.accounts.get(session.account_id)
            cap = user_limit(account.budgets, session.user)
            if cap is not None:
                spent = await ledger.spent(session.account_id, user=session.user)
                found.append(Limit("user", cap, spent))
        return found

    async def ensure_within_budget(
        self, session: SessionRecord, *, turns: int = 1, account: AccountRecord | None = None
    ) -> None:
        """Refuse a turn (or a fan-out of ``turns`` variants) that would start over budget.

        Raises:
            BudgetExceeded: a limit is reached; ``context`` names the scope, the limit, what
                was spent and the estimate used for a fan-out.
        """
        limits = await self.limits(session, account)
        if not limits:
            return
        estimate = await self._store.ledger.mean_turn_cost(session.id) if turns > 1 else 0.0
        for limit in limits:
            projected = limit.spent_usd + (turns - 1) * estimate
            if projected < limit.max_cost_usd:
                continue
            who = (
                f"session {session.id!r}"
                if limit.scope == "session"
                else f"end user {session.user!r}"
            )
            fix = (
                "Create a session with a higher max_cost_usd"
                if limit.scope == "session"
                else "Raise the user's limit with PUT /v2/account/budgets"
            )
            what = "This turn" if turns == 1 else f"A fan-out of {turns} variants"
            raise BudgetExceeded(
                f"{what} would start over the budget of {who}: spent ${limit.spent_usd:.6f} of "
                f"max_cost_usd ${limit.max_cost_usd:g}"
                + (f" (+ {turns - 1} × ${estimate:.6f} estimated)" if turns > 1 else "")
                + f". {fix}.",
                context={
                    "scope": limit.scope,
                    "session_id": session.id,
                    "user": session.user,
                    "max_cost_usd": limit.max_cost_usd,
                    "spent_usd": round(limit.spent_usd, 10),
                    "turns": turns,
                    "estimated_turn_cost_usd": round(estimate, 10),
                },
            )


def user_limit(budgets: dict[str, Any] | None, user: str) -> float | None:
    """The end user's limit: their own, else the account default, else none."""
    if not budgets:
        return None
    own = (budgets.get("users") or {}).get(user)
    return own if own is not None else budgets.get("default_user_max_cost_usd")


def validate_budgets(budgets: dict[str, Any]) -> dict[str, Any]:
    """Check an account's budgets document (non-negative amounts) and return it.

    Raises:
        InvalidRequest: an amount is negative or not a number.
    """
    amounts = {"default_user_max_cost_usd": budgets.get("default_user_max_cost_usd")}
    amounts.update({f"users.{u}": v for u, v in (budgets.get("users") or {}).items()})
    for name, value in amounts.items():
        if value is not None and (not isinstance(value, int | float) or value < 0):
            raise InvalidRequest(
                f"Budget {name}={value!r} must be a non-negative number of USD (or null).",
                context={"field": name},
            )
    return budgets
