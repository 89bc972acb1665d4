"""Alembic's environment for this project's tables (run by ``bot.storage.migrate``, never by hand).

The URL comes from the caller (``make migrate`` reads ``TRACKER_DB_URL``). On PostgreSQL an
advisory lock makes replicas that migrate at the same moment take turns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

# One number for every replica of this project: "lancs-migrate".
MIGRATION_LOCK_KEY = 74_357_339


def run_migrations_online() -> None:
    """Runs the pending migrations on the configured database (or the connection handed over)."""
    given = context.config.attributes.get("connection")
    if given is not None:
        context.configure(connection=given, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.config.get_main_option("sqlalchemy.url")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        try:
            context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
    engine.dispose()


run_migrations_online()
