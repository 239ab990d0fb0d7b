"""Alembic environment: the connection is the one `assistant.db.migrate` opened from the settings."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run the migrations with `assistant db upgrade` (it connects with ASSISTANT_DATABASE_URL "
        "or the SQLite files in ASSISTANT_STATE_DIR); the alembic command line is not set up"
    )
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():  # the caller's transaction: one for the whole upgrade
    context.run_migrations()
