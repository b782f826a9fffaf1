"""A subscriber can choose the hour at which local-hour digests reach them.

Revision ID: 0004_subscriber_hour
Revises: 0003_subscriber_pause
Create Date: 2026-12-01

``subscribers.local_hour``: 0-23 in the subscriber's time zone; NULL (every existing row)
means the digest's own ``local_hour``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_subscriber_hour"
down_revision: str | None = "0003_subscriber_pause"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("local_hour", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("local_hour")
