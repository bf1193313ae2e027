"""Alembic environment: runs on the connection the gateway hands it (see Database.migrate)."""

from alembic import context

from cerver.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Cerver's migrations run from the gateway: start `cerver serve` (it upgrades the "
        "database on start) rather than the alembic command line."
    )
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
