"""The first schema: conversation events, slot checkpoints, conversation locks and feedback views.

Revision ID: 0001
Revises:

A database made before migrations existed (by earlier releases, whose processes each created
the tables they used) is adopted: tables already there are kept as they are, except the lock
table, whose rows only live for seconds and whose columns changed (leases with an owner).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _existing() -> set:
    return set(sa.inspect(op.get_bind()).get_table_names())


def upgrade() -> None:
    """Creates the tables that are missing."""
    existing = _existing()
    if "events" not in existing:  # the columns of Rasa 3.6's SQLTrackerStore
        op.create_table(
            "events",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("sender_id", sa.String(255), nullable=False),
            sa.Column("type_name", sa.String(255), nullable=False),
            sa.Column("timestamp", sa.Float),
            sa.Column("intent_name", sa.String(255)),
            sa.Column("action_name", sa.String(255)),
            sa.Column("data", sa.Text),
        )
        op.create_index("ix_events_sender_id", "events", ["sender_id"])
    if "tracker_checkpoints" not in existing:
        op.create_table(
            "tracker_checkpoints",
            sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("sender_id", sa.String(255), nullable=False),
            sa.Column("state", sa.Text, nullable=False),
        )
        op.create_index("ix_tracker_checkpoints_sender_event", "tracker_checkpoints", ["sender_id", "event_id"])
    if "conversation_locks" in existing:
        op.drop_table("conversation_locks")
    op.create_table(
        "conversation_locks",
        sa.Column("ticket", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
        sa.Column("deadline", sa.Float, nullable=False),
        sqlite_autoincrement=True,  # never hand out a number again, even the latest one's
    )
    op.create_index("ix_conversation_locks_conversation", "conversation_locks", ["conversation_id", "ticket"])
    op.create_index("ix_conversation_locks_owner", "conversation_locks", ["owner"])
    if "feedback" not in existing:
        op.create_table(
            "feedback",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.Column("about", sa.Text, nullable=False),
            sa.Column("view", sa.Text, nullable=False),
            sqlite_autoincrement=True,
        )


def downgrade() -> None:
    """Removes every table of this schema (and everything in them)."""
    for table in ("feedback", "conversation_locks", "tracker_checkpoints", "events"):
        op.drop_table(table)
