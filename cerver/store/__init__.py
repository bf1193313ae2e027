"""Persistence: one SQLAlchemy Core store that runs on SQLite (embedded) and PostgreSQL."""

from cerver.store.accounts import AccountStore
from cerver.store.computes import ComputeRecord, ComputeStore
from cerver.store.credentials import CredentialRecord, CredentialStore
from cerver.store.database import Database
from cerver.store.fanouts import FanoutRecord, FanoutStore, VariantRecord
from cerver.store.grants import GrantStore
from cerver.store.idempotency import IdempotencyStore
from cerver.store.ledger import LedgerStore
from cerver.store.profiles import LearnedProfile, ProfileStore
from cerver.store.records import (
    AccountRecord,
    ApiKeyRecord,
    RunRecord,
    SessionRecord,
    StoredEvent,
)
from cerver.store.runs import RunStore
from cerver.store.sessions import SessionFilters, SessionStore
from cerver.store.snapshots import SnapshotStore
from cerver.store.transcript import TranscriptStore
from cerver.store.writer import SessionWriter

__all__ = [
    "AccountRecord",
    "AccountStore",
    "ApiKeyRecord",
    "ComputeRecord",
    "ComputeStore",
    "CredentialRecord",
    "CredentialStore",
    "Database",
    "FanoutRecord",
    "FanoutStore",
    "GrantStore",
    "IdempotencyStore",
    "LearnedProfile",
    "LedgerStore",
    "ProfileStore",
    "RunRecord",
    "RunStore",
    "SessionFilters",
    "SessionRecord",
    "SessionStore",
    "SessionWriter",
    "SnapshotStore",
    "Store",
    "StoredEvent",
    "TranscriptStore",
    "VariantRecord",
]


class Store:
    """The repositories over one database."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.accounts = AccountStore(self.db)
        self.sessions = SessionStore(self.db)
        self.transcript = TranscriptStore(self.db)
        self.runs = RunStore(self.db)
        self.ledger = LedgerStore(self.db)
        self.fanouts = FanoutStore(self.db)
        self.idempotency = IdempotencyStore(self.db)
        self.computes = ComputeStore(self.db)
        self.credentials = CredentialStore(self.db)
        self.profiles = ProfileStore(self.db)
        self.snapshots = SnapshotStore(self.db)
        self.grants = GrantStore(self.db)

    async def open(self) -> None:
        await self.db.migrate()

    async def close(self) -> None:
        await self.db.dispose()
