"""Baseline: the schema of the last version without migrations (commit 0279f88).

Revision ID: 0001
Revises:
Create Date: 2026-12-01

A database written before migrations has no ``alembic_version`` table, and only the
tables its commands needed: ``fetch`` created sources, entries, editions and
edition_entries; subscribers and outbox came with the first mail command, llm_summaries
with the first LLM summary; and a subscribers table from before personal topics has no
``topics`` column (the code of that time added it on open). So this revision creates only
the tables and indexes that are missing, and adds ``topics`` where it is missing: on an
empty database it creates everything, on an old one it completes it, and its rows stay.

The definitions are frozen here as they were: later changes go in later revisions.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _sources() -> None:
    op.create_table(
        "sources",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("fetch_url", sa.Text()),
        sa.Column("title", sa.Text()),
        sa.Column("etag", sa.Text()),
        sa.Column("last_modified", sa.Text()),
        sa.Column("status", sa.String(20), nullable=False, server_default="new"),
        sa.Column("error_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_fetched", sa.DateTime()),
        sa.Column("last_ok", sa.DateTime()),
        sa.Column("retry_after", sa.DateTime()),
        sa.PrimaryKeyConstraint("name"),
    )


def _entries() -> None:
    op.create_table(
        "entries",
        sa.Column("pk", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("entry_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("link", sa.Text(), nullable=False, server_default=""),
        sa.Column("author", sa.Text()),
        sa.Column("published", sa.DateTime()),
        sa.Column("updated", sa.DateTime()),
        sa.Column("tags", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("content_html", sa.Text(), nullable=False, server_default=""),
        sa.Column("text", sa.Text(), nullable=False, server_default=""),
        sa.Column("points", sa.Integer()),
        sa.Column("upvotes", sa.Integer()),
        sa.Column("comments", sa.Integer()),
        sa.Column("comments_url", sa.Text()),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("source", "entry_id", name="uq_entries_source_id"),
    )


def _editions() -> None:
    op.create_table(
        "editions",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("period", sa.String(100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest", "period", name="uq_editions_digest_period"),
    )


def _edition_entries() -> None:
    op.create_table(
        "edition_entries",
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("entry_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("edition_id", "position"),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"]),
    )


def _topics() -> sa.Column[str]:
    return sa.Column("topics", sa.Text(), nullable=False, server_default="[]")


def _subscribers() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.Text(), nullable=False, server_default=""),
        sa.Column("digests", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("interests", sa.Text(), nullable=False, server_default="[]"),
        _topics(),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("format", sa.String(20), nullable=False, server_default="html"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )


def _outbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("state", sa.String(20), nullable=False, server_default="queued"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_try", sa.DateTime()),
        sa.Column("claim", sa.String(100)),
        sa.Column("claimed_at", sa.DateTime()),
        sa.Column("sent_at", sa.DateTime()),
        sa.Column("reply", sa.Text()),
        sa.Column("last_error", sa.Text()),
        sa.Column("message_id", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("edition_id", "subscriber_id", name="uq_outbox_edition_subscriber"),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"]),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"]),
    )


def _llm_summaries() -> None:
    op.create_table(
        "llm_summaries",
        sa.Column("entry_key", sa.Text(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("prompt", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("entry_key", "model", "prompt"),
    )


TABLES: dict[str, Callable[[], None]] = {
    # In dependency order (foreign keys point to tables created before).
    "sources": _sources,
    "entries": _entries,
    "editions": _editions,
    "edition_entries": _edition_entries,
    "subscribers": _subscribers,
    "outbox": _outbox,
    "llm_summaries": _llm_summaries,
}
INDEXES = {
    "ix_entries_first_seen": ("entries", ["first_seen"]),
    "ix_outbox_edition_state": ("outbox", ["edition_id", "state"]),
}


def upgrade() -> None:
    if op.get_context().as_sql:
        # ``alembic upgrade --sql`` has no database to look at: the SQL of a new one.
        for create in TABLES.values():
            create()
        for index, (table, columns) in INDEXES.items():
            op.create_index(index, table, columns)
        return
    inspector = sa.inspect(op.get_bind())
    have = set(inspector.get_table_names())
    for name, create in TABLES.items():
        if name not in have:
            create()
        elif name == "subscribers":
            present = {c["name"] for c in inspector.get_columns(name)}
            if "topics" not in present:
                op.add_column(name, _topics())
    for index, (table, columns) in INDEXES.items():
        indexes = inspector.get_indexes(table) if table in have else []
        if index not in {i["name"] for i in indexes}:
            op.create_index(index, table, columns)


def downgrade() -> None:
    for index, (table, _) in INDEXES.items():
        op.drop_index(index, table_name=table)
    for name in reversed(TABLES):
        op.drop_table(name)
