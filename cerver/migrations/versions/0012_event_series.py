"""store a series of consecutive text deltas as one event row (``last_id``: its last id)

Revision ID: 0012
Revises: 0010
Create Date: 2026-11-30 09:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("last_id", sa.Integer, nullable=True))


def downgrade() -> None:
    # Each series row is written out as the rows it stands for, one event each, then dropped.
    conn = op.get_bind()
    events = sa.table(
        "events",
        sa.column("session_id"),
        sa.column("id"),
        sa.column("last_id"),
        sa.column("event"),
        sa.column("data"),
        sa.column("created_at"),
    )
    series = conn.execute(sa.select(events).where(events.c.last_id.is_not(None))).all()
    for row in series:
        conn.execute(
            events.delete().where(events.c.session_id == row.session_id, events.c.id == row.id)
        )
        conn.execute(
            events.insert(),
            [
                {
                    "session_id": row.session_id,
                    "id": row.id + offset,
                    "last_id": None,
                    "event": row.event,
                    "data": data,
                    "created_at": row.created_at,
                }
                for offset, data in enumerate(row.data.split("\n"))
            ],
        )
    with op.batch_alter_table("events") as batch:
        batch.drop_column("last_id")
