"""record which price source priced each call

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("entries", "ledger"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("cost_source", sa.String(length=100), nullable=True))


def downgrade() -> None:
    for table in ("entries", "ledger"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("cost_source")
