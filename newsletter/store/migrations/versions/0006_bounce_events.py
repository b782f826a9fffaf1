"""Bounces, complaints and unsubscribe mails are recorded, and why a subscriber stopped.

Revision ID: 0006_bounce_events
Revises: 0005_entry_media
Create Date: 2026-12-01

``bounce_events``: one row per report (unique by the report's Message-ID or event id),
tied to the subscriber, edition and outbox row its token names. ``subscribers.status_reason``:
why the status last changed (NULL for every existing row).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_bounce_events"
down_revision: str | None = "0005_entry_media"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source_id", sa.String(400), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), sa.ForeignKey("subscribers.id")),
        sa.Column("edition_id", sa.Integer(), sa.ForeignKey("editions.id")),
        sa.Column("outbox_id", sa.Integer()),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("received_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_bounce_events_edition_kind", "bounce_events", ["edition_id", "kind"])
    op.create_index("ix_bounce_events_subscriber", "bounce_events", ["subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_bounce_events_subscriber", "bounce_events")
    op.drop_index("ix_bounce_events_edition_kind", "bounce_events")
    op.drop_table("bounce_events")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("status_reason")
