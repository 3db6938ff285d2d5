"""Alembic's environment: runs on the connection ``db.migrate`` hands over (no alembic.ini).

``config.attributes`` carries ``connection`` (already in a transaction, and on PostgreSQL
holding the migration lock) and ``target_metadata`` (the models, for drafting revisions).
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the history migrations run through scratchdet.service.db.migrate, "
                       "which hands them a connection; there is no alembic.ini")
context.configure(
    connection=connection,
    target_metadata=config.attributes.get("target_metadata"),
    compare_type=True,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying a table
)
with context.begin_transaction():
    context.run_migrations()
