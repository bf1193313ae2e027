"""index sessions by (account_id, status, created_at) for list-by-status

Revision ID: 0010
Revises: 0011
Create Date: 2026-11-29 21:15:00
"""

from alembic import op

revision = "0010"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_sessions_account_id_status_created_at",
        "sessions",
        ["account_id", "status", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_sessions_account_id_status_created_at", table_name="sessions")
