"""Entries keep the extra data of rich sources (paper cards, video thumbnails).

Revision ID: 0005_entry_media
Revises: 0004_subscriber_hour
Create Date: 2026-12-01

``entries.media``: JSON of ``EntryMedia`` (thumbnail, authors, organization, links,
ai_summary, keywords); NULL (every existing row) means the source gave none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_entry_media"
down_revision: str | None = "0004_subscriber_hour"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("media", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("media")
