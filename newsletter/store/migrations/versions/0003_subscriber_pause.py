"""A subscriber can pause their mail until a date (the preference page).

Revision ID: 0003_subscriber_pause
Revises: 0002_web_limits
Create Date: 2026-12-01

``subscribers.paused_until``: no mail is sent to the subscriber before it; NULL (every
existing row) means not paused.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_subscriber_pause"
down_revision: str | None = "0002_web_limits"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("paused_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("paused_until")
