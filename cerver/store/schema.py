"""Table definitions (SQLAlchemy Core). Migrations in ``cerver/migrations`` mirror these.

Counters that must stay gapless across processes (``next_seq``, ``next_event_id``) live on the
session row and are advanced only by the holder of the session's turn lock
(``lock_run_id`` / ``lock_expires_at``), in the same transaction as the rows they number.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "MAX_INTEGER",
    "accounts",
    "api_keys",
    "computes",
    "entries",
    "events",
    "fanout_variants",
    "fanouts",
    "idempotency_keys",
    "ledger",
    "metadata",
    "provider_credentials",
    "provider_profiles",
    "proxy_grants",
    "runs",
    "sessions",
    "snapshots",
    "utcnow",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSON = sa.JSON().with_variant(JSONB(), "postgresql")
# The largest value an ``sa.Integer`` column holds on every backend (32 bits on PostgreSQL):
# the bound of any request value compared with or written to one (seqs, event ids, tokens).
MAX_INTEGER = 2**31 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("routing_policy", JSON, nullable=True),
    # {"default_user_max_cost_usd": float | None, "users": {user: float}} (services/budgets).
    sa.Column("budgets", JSON, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("prefix", sa.String(20), primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, default="default"),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Index(None, "account_id"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user", sa.String(200), nullable=True),
    sa.Column("session_name", sa.String(200), nullable=True),
    sa.Column("task", sa.Text, nullable=True),
    sa.Column("workload", sa.String(100), nullable=True),
    sa.Column("status", sa.String(20), nullable=False, default="ready"),
    sa.Column("harness", sa.String(100), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("harness_options", JSON, nullable=False, default=dict),
    sa.Column("system_prompt", sa.Text, nullable=True),
    sa.Column("provider", sa.String(100), nullable=True),
    sa.Column("compute_id", sa.String(40), nullable=True),
    sa.Column("sandbox_id", sa.String(200), nullable=True),
    # The options its compute was created with (``compute: {provider, options}``).
    sa.Column("compute_options", JSON, nullable=True),
    sa.Column("parent_session_id", sa.String(40), nullable=True),
    sa.Column("repo", JSON, nullable=True),
    sa.Column("requirements", JSON, nullable=True),
    sa.Column("policy", JSON, nullable=True),
    sa.Column("routing", JSON, nullable=True),
    sa.Column("metadata", JSON, nullable=False, default=dict),
    sa.Column("next_seq", sa.Integer, nullable=False, default=1),
    sa.Column("next_event_id", sa.Integer, nullable=False, default=1),
    sa.Column("lock_run_id", sa.String(40), nullable=True),
    sa.Column("lock_expires_at", UTCDateTime, nullable=True),
    # Metrics counters (the seed's session metrics are derived from these).
    sa.Column("provision_time_ms", sa.Float, nullable=True),
    sa.Column("first_exec_at", UTCDateTime, nullable=True),
    sa.Column("exec_count", sa.Integer, nullable=False, default=0),
    sa.Column("exec_total_ms", sa.Float, nullable=False, default=0.0),
    sa.Column("last_exec_ms", sa.Float, nullable=True),
    sa.Column("stream_count", sa.Integer, nullable=False, default=0),
    sa.Column("stream_open_total_ms", sa.Float, nullable=False, default=0.0),
    sa.Column("interaction_count", sa.Integer, nullable=False, default=0),
    sa.Column("compute_seconds", sa.Float, nullable=False, default=0.0),
    sa.Column("max_cost_usd", sa.Float, nullable=True),
    sa.Column("fallback_models", JSON, nullable=False, default=list),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Index(None, "account_id", "user", "created_at"),
    sa.Index(None, "account_id", "status", "created_at"),
    sa.Index(None, "account_id", "created_at"),
    sa.Index(None, "parent_session_id"),
)

entries = sa.Table(
    "entries",
    metadata,
    sa.Column("session_id", sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("content", sa.Text, nullable=False, default=""),
    sa.Column("parts", JSON, nullable=False, default=list),
    sa.Column("harness", sa.String(100), nullable=True),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("provider", sa.String(100), nullable=True),
    sa.Column("run_id", sa.String(40), nullable=True),
    sa.Column("input_tokens", sa.Integer, nullable=True),
    sa.Column("output_tokens", sa.Integer, nullable=True),
    sa.Column("cost_usd", sa.Float, nullable=True),
    sa.Column("cost_reason", sa.Text, nullable=True),
    sa.Column("cost_source", sa.String(100), nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("status", sa.String(20), nullable=False, default="complete"),
    sa.Column("metadata", JSON, nullable=False, default=dict),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("session_id", sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("harness", sa.String(100), nullable=True),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("provider", sa.String(100), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("answered_model", sa.String(200), nullable=True),
    # The W3C trace id of the request that started the run (hex; see cerver.telemetry).
    sa.Column("trace_id", sa.String(32), nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    # Set by ``POST …/runs/{id}/cancel`` on any replica; the process running it polls for it.
    sa.Column("cancel_requested_at", UTCDateTime, nullable=True),
    sa.Index(None, "session_id"),
    sa.Index(None, "status", "lease_expires_at"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("session_id", sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    # A series of consecutive deltas in one row: its last event's id (cerver/store/event_rows.py).
    sa.Column("last_id", sa.Integer, nullable=True),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("session_id", sa.String(40), nullable=False),
    sa.Column("user", sa.String(200), nullable=True),
    sa.Column("run_id", sa.String(40), nullable=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("harness", sa.String(100), nullable=True),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("provider", sa.String(100), nullable=True),
    sa.Column("input_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("output_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cost_usd", sa.Float, nullable=True),
    sa.Column("cost_reason", sa.Text, nullable=True),
    sa.Column("cost_source", sa.String(100), nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Index(None, "account_id", "created_at"),
    sa.Index(None, "account_id", "user", "created_at"),
    sa.Index(None, "session_id"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("account_id", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    # The answer's own headers worth replaying (``X-Cerver-*``), as ``[[name, value], …]``.
    sa.Column("headers", JSON, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
)

computes = sa.Table(
    "computes",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("base_url", sa.String(2000), nullable=False),
    sa.Column("token", sa.String(500), nullable=False),
    sa.Column("capabilities", JSON, nullable=False, default=dict),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Column("last_heartbeat_at", UTCDateTime, nullable=True),
    sa.Index(None, "account_id"),
)

# An account's own provider keys (bring your own key). ``secret`` is the Fernet token of the
# key (cerver/services/credentials.py); the key itself is never stored in clear.
provider_credentials = sa.Table(
    "provider_credentials",
    metadata,
    sa.Column(
        "account_id",
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("provider", sa.String(100), primary_key=True),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("base_url", sa.String(2000), nullable=True),
    sa.Column("fingerprint", sa.String(40), nullable=False),
    sa.Column("set_at", UTCDateTime, nullable=False, default=utcnow),
)

# Learned per-provider figures (exponentially weighted), shared by every gateway process.
provider_profiles = sa.Table(
    "provider_profiles",
    metadata,
    sa.Column("provider", sa.String(100), primary_key=True),
    sa.Column("startup_ms", sa.Float, nullable=True),
    sa.Column("exec_ms", sa.Float, nullable=True),
    sa.Column("reliability", sa.Float, nullable=True),
    sa.Column("provisions", sa.Integer, nullable=False, default=0),
    sa.Column("execs", sa.Integer, nullable=False, default=0),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
)

# Model-proxy run tokens (cerver/store/grants.py), so any replica on this database serves them.
# Only the SHA-256 of a token is kept; a grant is live until ``expires_at``, its revocation,
# or the end of its run. No foreign keys: a grant outlives nothing (it expires), and a usage
# row of a deleted session is simply not written.
proxy_grants = sa.Table(
    "proxy_grants",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("session_id", sa.String(40), nullable=False),
    sa.Column("account_id", sa.String(40), nullable=True),
    sa.Column("harness", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Index(None, "run_id"),
)

# The workspace of a paused session (a Sandbox.get_state archive) until it resumes.
snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("session_id", sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("archive", sa.LargeBinary, nullable=False),
    sa.Column("provider", sa.String(100), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
)

fanouts = sa.Table(
    "fanouts",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("account_id", sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "parent_session_id", sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("status", sa.String(20), nullable=False, default="running"),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("judge", JSON, nullable=True),
    sa.Column("keep", sa.String(20), nullable=False, default="winner"),
    sa.Column("max_concurrency", sa.Integer, nullable=False),
    sa.Column("verdict", JSON, nullable=True),
    sa.Column("winner_variant_id", sa.String(40), nullable=True),
    sa.Column("picked_by", sa.String(20), nullable=True),
    sa.Column("kept_message_seq", sa.Integer, nullable=True),
    sa.Column("judge_input_tokens", sa.Integer, nullable=True),
    sa.Column("judge_output_tokens", sa.Integer, nullable=True),
    sa.Column("judge_cost_usd", sa.Float, nullable=True),
    sa.Column("judge_latency_ms", sa.Float, nullable=True),
    sa.Column("wall_ms", sa.Float, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    # Renewed by the process running the fan-out; once it runs out, that process is gone.
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    # Set by ``POST /v2/fanouts/{id}/cancel`` on any replica; the process running it polls.
    sa.Column("cancel_requested_at", UTCDateTime, nullable=True),
    sa.Index(None, "account_id", "created_at"),
    sa.Index(None, "parent_session_id"),
)

fanout_variants = sa.Table(
    "fanout_variants",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("fanout_id", sa.ForeignKey("fanouts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("session_id", sa.String(40), nullable=True),
    sa.Column("run_id", sa.String(40), nullable=True),
    sa.Column("harness", sa.String(100), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("provider", sa.String(100), nullable=True),
    sa.Column("compute", sa.String(100), nullable=True),
    sa.Column("status", sa.String(20), nullable=False, default="pending"),
    sa.Column("output", sa.Text, nullable=True),
    sa.Column("input_tokens", sa.Integer, nullable=True),
    sa.Column("output_tokens", sa.Integer, nullable=True),
    sa.Column("cost_usd", sa.Float, nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("error", JSON, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Index(None, "fanout_id", "position", unique=True),
)
