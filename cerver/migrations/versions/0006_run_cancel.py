"""runs and fan-outs can be asked to cancel from any gateway process

Revision ID: 0006
Revises: 0008
Create Date: 2026-11-29 18:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("runs", "fanouts"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True)
            )


def downgrade() -> None:
    for table in ("runs", "fanouts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("cancel_requested_at")
