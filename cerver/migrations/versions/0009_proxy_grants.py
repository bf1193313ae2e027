"""model-proxy run grants in the store, hashed, so every replica serves them

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-29 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proxy_grants",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("account_id", sa.String(40), nullable=True),
        sa.Column("harness", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_proxy_grants"),
    )
    op.create_index("ix_proxy_grants_run_id", "proxy_grants", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_proxy_grants_run_id", table_name="proxy_grants")
    op.drop_table("proxy_grants")
