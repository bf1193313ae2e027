"""Spending limits: a session's ``max_cost_usd`` and each end user's, checked before a turn.

Two limits apply to a turn, both in USD of LLM and compute spend from the ledger:

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

**Unpriced spend is refused, never ignored.** A limit can hold only over spend that is known.
Where a limit applies, a turn is refused with 402 ``budget_exceeded`` (``context.reason`` =
``"unpriced"``, naming the models in ``context.unpriced_models``) when

* the model the turn is about to call has no known price (:meth:`BudgetService.ensure_priced`,
  before any call), or
* the spend under the limit holds calls that were recorded without a price (a fallback model,
  a caller-reported ``usage`` without ``cost_usd``, calls made before the limit was set).

The fix the message names: give the gateway the model's rates in ``CERVER_PRICES_FILE`` (a JSON
price table that wins over every other source, see :mod:`cerver.pricing`). Calls recorded
without a price keep their tokens, and the check prices them again with the current sources,
so once the rates are known the spend is too and turns run again. (That re-pricing applies a
tiered rate to the summed tokens, which can only over-count: fine for a limit, not a bill.)
Without any limit, unpriced calls run and are reported as unpriced (``unpriced_calls`` in
``GET /v2/usage``, ``llm_calls_unpriced`` in a session's metrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cerver import pricing
from cerver.errors import BudgetExceeded, InvalidRequest
from cerver.store import SessionRecord, Store
from cerver.store.ledger import Spend, UnpricedCalls
from cerver.store.records import AccountRecord
from cerver.types import Usage

__all__ = ["BudgetService", "Limit", "validate_budgets"]


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit that applies to a session: what it covers, its amount, what was spent.

    ``spent_usd`` includes the recorded-unpriced calls the current price sources now know;
    ``unpriced`` holds those they still do not (then ``spent_usd`` is a lower bound).
    """

    scope: str  # "session" | "user"
    max_cost_usd: float
    spent_usd: float
    unpriced: tuple[UnpricedCalls, ...] = ()

    @classmethod
    def over(cls, scope: str, max_cost_usd: float, spend: Spend) -> Limit:
        spent, unknown = spend.usd, []
        for calls in spend.unpriced:
            usage = Usage(input_tokens=calls.input_tokens, output_tokens=calls.output_tokens)
            cost = pricing.price(calls.model, calls.provider or "", usage).cost_usd
            if cost is None:
                unknown.append(calls)
            else:
                spent += cost
        return cls(scope, max_cost_usd, spent, tuple(unknown))


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
            found.append(Limit.over("session", session.max_cost_usd, spent))
        if session.user is not None:
            account = account or await self._store.accounts.get(session.account_id)
            cap = user_limit(account.budgets, session.user)
            if cap is not None:
                spent = await ledger.spent(session.account_id, user=session.user)
                found.append(Limit.over("user", cap, spent))
        return found

    async def ensure_within_budget(
        self, session: SessionRecord, *, turns: int = 1, account: AccountRecord | None = None
    ) -> bool:
        """Refuse a turn (or a fan-out of ``turns`` variants) that would start over budget.

        Returns:
            Whether any limit applies (then the turn's model must be priced too, see
            :meth:`ensure_priced`).

        Raises:
            BudgetExceeded: a limit is reached; ``context`` names the scope, the limit, what
                was spent and the estimate used for a fan-out. Or the spend under a limit
                holds unpriced calls (``context.reason`` = ``"unpriced"``).
        """
        limits = await self.limits(session, account)
        if not limits:
            return False
        for limit in limits:
            if limit.unpriced:
                raise _unpriced(session, limit, limit.unpriced)
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
        return True

    @staticmethod
    def ensure_priced(session: SessionRecord, model: str, provider: str) -> None:
        """Refuse a budgeted turn whose model no price source knows, before it calls it.

        Call it when :meth:`ensure_within_budget` said that a limit applies.

        Raises:
            BudgetExceeded: ``model`` has no known price (``context.reason`` = ``"unpriced"``).
        """
        if pricing.price(model, provider, Usage()).cost_usd is None:
            raise _unpriced(session, None, (UnpricedCalls(model, provider, 0, 0, 0),))


def _unpriced(
    session: SessionRecord, limit: Limit | None, unpriced: tuple[UnpricedCalls, ...]
) -> BudgetExceeded:
    models = sorted({calls.model for calls in unpriced})
    named = ", ".join(
        f"{calls.model!r}" + (f" (provider {calls.provider!r})" if calls.provider else "")
        for calls in unpriced
    )
    if limit is None:
        what = f"this turn would call {named}, which no price source knows"
    else:
        calls = sum(c.calls for c in unpriced)
        what = f"{calls} recorded call(s) of {named} have no known price"
    return BudgetExceeded(
        f"The budget of session {session.id!r} cannot be enforced: {what}, so its spend would "
        f"be unknown. Add the model's rates to the gateway's {pricing.PRICES_FILE_ENV} (a JSON "
        'price table: {"provider/model": {"input_per_mtok": …, "output_per_mtok": …}}) and '
        "restart it; recorded calls are then priced too.",
        context={
            "reason": "unpriced",
            "scope": "turn" if limit is None else limit.scope,
            "session_id": session.id,
            "user": session.user,
            "unpriced_models": models,
            "unpriced_calls": sum(c.calls for c in unpriced),
            "max_cost_usd": None if limit is None else limit.max_cost_usd,
            "spent_usd": None if limit is None else round(limit.spent_usd, 10),
            "setting": pricing.PRICES_FILE_ENV,
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
