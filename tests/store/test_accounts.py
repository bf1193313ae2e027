from __future__ import annotations

import pytest

from cerver.errors import NotFound
from cerver.store import Store


async def test_key_is_shown_once_and_stored_hashed(store: Store) -> None:
    account, key = await store.accounts.create("acme")
    assert key.startswith("ck_")
    assert (await store.accounts.authenticate(key)).id == account.id
    from cerver.store.schema import api_keys

    rows = await store.db.read(lambda conn: conn.execute(api_keys.select()).all())
    assert all(key not in str(tuple(row)) for row in rows)


async def test_wrong_and_revoked_keys_do_not_authenticate(store: Store) -> None:
    account, key = await store.accounts.create("acme")
    assert await store.accounts.authenticate(key[:-1] + ("x" if key[-1] != "x" else "y")) is None
    assert await store.accounts.authenticate("not-a-key") is None
    record, second = await store.accounts.create_key(account.id, "ci")
    await store.accounts.revoke_key(account.id, record.prefix)
    assert await store.accounts.authenticate(second) is None
    assert await store.accounts.authenticate(key) is not None


async def test_revoking_another_accounts_key_is_not_found(store: Store) -> None:
    a, _ = await store.accounts.create("a")
    b, _ = await store.accounts.create("b")
    record, _ = await store.accounts.create_key(b.id)
    with pytest.raises(NotFound):
        await store.accounts.revoke_key(a.id, record.prefix)


async def test_explicit_admin_key(store: Store) -> None:
    _, key = await store.accounts.create("admin", is_admin=True, api_key="ck_explicit_key_123456")
    assert key == "ck_explicit_key_123456"
    assert (await store.accounts.authenticate(key)).is_admin


async def test_recent_account_reads_once_and_sees_changes_made_here_at_once(store: Store) -> None:
    account, _ = await store.accounts.create("acme")
    reads = 0
    read = store.db.read

    async def counting(query):  # counts the store round trips of recent()
        nonlocal reads
        reads += 1
        return await read(query)

    store.db.read = counting  # type: ignore[method-assign]
    first = await store.accounts.recent(account.id)
    again = await store.accounts.recent(account.id)
    assert first == again and reads == 1
    await store.accounts.set_budgets(account.id, {"per_user_usd": 5})
    assert (await store.accounts.recent(account.id)).budgets == {"per_user_usd": 5}
    await store.accounts.set_routing_policy(account.id, None)
    await store.accounts.recent(account.id)
    assert reads == 3
    with pytest.raises(NotFound):
        await store.accounts.recent("acct_missing")
