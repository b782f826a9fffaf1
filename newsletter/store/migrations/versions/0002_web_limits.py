"""The web app's abuse limits and single-use confirmation links.

Revision ID: 0002_web_limits
Revises: 0001
Create Date: 2026-12-01

``web_limits`` holds one counter per key (a client network, a recipient address) and
time window, so the subscribe limits hold across processes and restarts; rows past
``expires_at`` are deleted. ``web_confirmations`` holds the nonce of each address's one
working confirmation link; confirming deletes it, so a link works once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_web_limits"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "web_limits",
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start"),
    )
    op.create_index("ix_web_limits_expires_at", "web_limits", ["expires_at"])
    op.create_table(
        "web_confirmations",
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("email"),
    )
    op.create_index("ix_web_confirmations_created_at", "web_confirmations", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_web_confirmations_created_at", table_name="web_confirmations")
    op.drop_table("web_confirmations")
    op.drop_index("ix_web_limits_expires_at", table_name="web_limits")
    op.drop_table("web_limits")
