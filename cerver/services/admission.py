"""What a turn must pass before it starts: the account's routing policy and the budgets.

:meth:`TurnAdmission.admit` runs in ``TurnService.start()``, before the session lock is taken
and before anything is written, so a refused turn leaves no trace and calls no model. Once
the harness and model are resolved, :meth:`TurnAdmission.ensure_priced` refuses a budgeted turn
whose model has no known price (see :mod:`cerver.services.budgets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cerver.services.budgets import BudgetService
from cerver.services.model_routing import parse_policy, route_turn
from cerver.services.sessions import HarnessChoice
from cerver.store import SessionRecord, Store
from harnesses.base import Harness

__all__ = ["Admission", "TurnAdmission"]


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted turn: the harness choice to resolve and what routed it.

    Attributes:
        choice: the request's explicit choice, the policy's route, or ``None`` (the
            session's own harness and model).
        routed_by: ``{"policy": name, "rule": name}`` when the policy chose, else ``None``.
        budgeted: a spending limit applies (so the turn's model must have a known price).
    """

    choice: HarnessChoice | None
    routed_by: dict[str, Any] | None
    budgeted: bool = False


class TurnAdmission:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.budgets = BudgetService(store)

    async def admit(
        self, session: SessionRecord, explicit: HarnessChoice | None, prompt: str, *, turns: int = 1
    ) -> Admission:
        """Route the turn by the account's policy, then check the budgets.

        Raises:
            BudgetExceeded: the session or its end user is at their limit, or their spend
                holds calls without a known price (402).
        """
        # Read at most a few seconds ago: a policy or budget set on another replica applies
        # within that time, one set through this process at once.
        account = await self._store.accounts.recent(session.account_id)
        choice, routed_by = route_turn(
            parse_policy(account.routing_policy),
            explicit,
            metadata=session.metadata,
            prompt=prompt,
            turns=session.interaction_count,
        )
        budgeted = await self.budgets.ensure_within_budget(session, turns=turns, account=account)
        return Admission(choice, routed_by, budgeted)

    def ensure_priced(
        self, admission: Admission, session: SessionRecord, harness: Harness, model: str
    ) -> None:
        """Refuse a budgeted turn whose model has no known price, before the model is called.

        Raises:
            BudgetExceeded: a limit applies and no price source knows ``model`` (402).
        """
        if not admission.budgeted:
            return
        # Harnesses that route by model name (LiteLLM, pydantic-ai) know each model's provider.
        provider_for = getattr(harness, "provider_for", None)
        provider = provider_for(model) if callable(provider_for) else harness.provider
        self.budgets.ensure_priced(session, model, provider)
