"""Creates and changes the database's tables: ``make migrate`` (``python -m bot.storage.migrate``).

Every table the assistant uses (conversation events, slot checkpoints, conversation locks,
feedback views) is made by the Alembic migrations in ``bot/storage/migrations/``, once, by one
command, and a later change to the schema reaches a live database the same way. The server
processes never create tables: they check that the database is up to date when they start, and
refuse to start with a clear message when it is not (``require_current``), so replicas starting
together never race to create them.

``make run`` on one machine with the default SQLite file migrates it itself before starting
(``bot/server/serve.py``; the stores do the same for a local file, ``ensure_schema``); a shared
database (PostgreSQL) is migrated by ``make migrate`` with the same ``TRACKER_DB_URL`` as the
replicas, before they start. On PostgreSQL an advisory lock
makes two migrations at the same moment take turns.

Command line::

    python -m bot.storage.migrate            # upgrade TRACKER_DB_URL to the latest schema
    python -m bot.storage.migrate --check    # exit 1 (and say so) if it is not up to date
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional

import sqlalchemy as sa

from bot.storage.engine import is_sqlite_file

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_URL = f"sqlite:///{Path(__file__).resolve().parents[2] / 'var' / 'tracker.db'}"


class SchemaNotCurrentError(RuntimeError):
    """The database's tables are missing or older than this release's."""


def _config(url: str) -> "object":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head() -> str:
    """The latest schema revision this release knows."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(_config(DEFAULT_URL)).get_current_head()  # type: ignore[arg-type]
    if revision is None:  # pragma: no cover - the migrations folder ships with the code
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return str(revision)


def current(url: str) -> Optional[str]:
    """The schema revision of the database at ``url`` (None if it was never migrated)."""
    from alembic.runtime.migration import MigrationContext

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str, engine: Optional[sa.engine.Engine] = None) -> str:
    """Brings the database at ``url`` to the latest schema. Returns the revision it is at.

    Args:
        url: the database.
        engine: migrate through this engine's connection (an in-memory SQLite database exists
            only inside its own engine).
    """
    from alembic import command

    if is_sqlite_file(url):
        database = sa.engine.make_url(url).database or ""
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    config = _config(url)
    if engine is None:
        command.upgrade(config, "head")  # type: ignore[arg-type]
        return head()
    with engine.begin() as connection:
        config.attributes["connection"] = connection  # type: ignore[attr-defined]
        command.upgrade(config, "head")  # type: ignore[arg-type]
    return head()


def require_current(url: str) -> None:
    """Raises unless the database at ``url`` has this release's schema.

    Raises:
        SchemaNotCurrentError: with what to run.
    """
    try:
        found = current(url)
    except sa.exc.SQLAlchemyError as error:
        raise SchemaNotCurrentError(f"cannot read the schema version ({type(error).__name__}: {error})") from error
    wanted = head()
    if found != wanted:
        state = "has no tables of this assistant" if found is None else f"is at schema {found}"
        raise SchemaNotCurrentError(
            f"the database {state}, this release needs schema {wanted}: run `make migrate` "
            "with the same TRACKER_DB_URL (once, before the replicas start)"
        )


def ensure_schema(url: str, engine: Optional[sa.engine.Engine] = None) -> None:
    """Migrates a SQLite database (one machine: nobody to race with); checks any other database.

    Args:
        url: the database.
        engine: the engine its store uses (needed for an in-memory SQLite database).

    Raises:
        SchemaNotCurrentError: a shared database was not migrated with ``make migrate``.
    """
    if is_sqlite_file(url):
        upgrade(url)
    elif sa.engine.make_url(url).get_backend_name() == "sqlite":
        upgrade(url, engine)
    else:
        require_current(url)


def main(argv: List[str]) -> int:
    """Upgrades (or, with ``--check``, checks) the database at ``TRACKER_DB_URL``."""
    parser = argparse.ArgumentParser(description="Create or update the assistant's tables.")
    parser.add_argument("--check", action="store_true", help="only check that the schema is up to date")
    parser.add_argument("--url", default=os.environ.get("TRACKER_DB_URL") or DEFAULT_URL)
    args = parser.parse_args(argv)
    shown = sa.engine.make_url(args.url).render_as_string(hide_password=True)
    if args.check:
        try:
            require_current(args.url)
        except SchemaNotCurrentError as error:
            print(f"{shown}: {error}", file=sys.stderr)
            return 1
        print(f"{shown}: schema {head()}, up to date")
        return 0
    try:
        revision = upgrade(args.url)
    except sa.exc.SQLAlchemyError as error:
        print(f"error: could not migrate {shown}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"{shown}: schema {revision}, up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
