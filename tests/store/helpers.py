from __future__ import annotations

from typing import Any

from cerver.ids import new_id
from cerver.store import SessionRecord, Store


async def make_session(store: Store, account_id: str, **values: Any) -> SessionRecord:
    row = {
        "id": new_id("sess"),
        "account_id": account_id,
        "status": "ready",
        "harness": "anthropic",
        "model": "claude-sonnet-4-5",
        **values,
    }
    return await store.sessions.create(row)
