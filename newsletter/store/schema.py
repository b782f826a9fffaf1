"""Every table of the store, in one place, and the schema revision they describe.

``metadata`` is the schema at ``REVISION``, the head of the Alembic migrations in
``newsletter/store/migrations``: a new database is created from it (``create_all``) and
stamped with that revision; an existing one is brought to it by the migrations. A test
compares this module with a migrated database (Alembic's autogenerate), so a change here
needs a migration, and the new revision id here.

Nothing else defines tables or columns: importing a module never changes the schema.

Times are stored as naive UTC and returned timezone-aware (``UTCDateTime``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

REVISION = "0007_outbox_claim_index"
"""The migration this schema is the result of (the head of ``migrations/versions``)."""

UNMANAGED_TABLES = frozenset({"apscheduler_jobs"})
"""Tables in the database that the migrations leave alone: APScheduler's job store
(``serve/daemon.py``) creates and owns its table, and changes it with APScheduler."""

metadata = sa.MetaData()


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the database."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- sources, entries, editions -------------------------------------------------------------

sources_table = sa.Table(
    "sources",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    # Where we fetch from now: starts as ``url`` (the configured one) and follows
    # permanent redirects; reset when the configured URL changes.
    sa.Column("fetch_url", sa.Text),
    sa.Column("title", sa.Text),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("status", sa.String(20), nullable=False, server_default="new"),
    sa.Column("error_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("last_fetched", UTCDateTime),
    sa.Column("last_ok", UTCDateTime),
    sa.Column("retry_after", UTCDateTime),
)

entries_table = sa.Table(
    "entries",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("entry_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("link", sa.Text, nullable=False, server_default=""),
    sa.Column("author", sa.Text),
    sa.Column("published", UTCDateTime),
    sa.Column("updated", UTCDateTime),
    sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
    sa.Column("content_html", sa.Text, nullable=False, server_default=""),
    sa.Column("text", sa.Text, nullable=False, server_default=""),
    sa.Column("points", sa.Integer),
    sa.Column("upvotes", sa.Integer),
    sa.Column("comments", sa.Integer),
    sa.Column("comments_url", sa.Text),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("media", sa.Text),
    sa.UniqueConstraint("source", "entry_id", name="uq_entries_source_id"),
    sa.Index("ix_entries_first_seen", "first_seen"),
)

editions_table = sa.Table(
    "editions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("digest", sa.String(200), nullable=False),
    sa.Column("period", sa.String(100), nullable=False),
    sa.Column("title", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("digest", "period", name="uq_editions_digest_period"),
)

edition_entries_table = sa.Table(
    "edition_entries",
    metadata,
    sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("entry_id", sa.Text, nullable=False),
)

# -- subscribers and the outbox --------------------------------------------------------------

subscribers_table = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False, server_default=""),
    # JSON lists; an empty digest list means every digest.
    sa.Column("digests", sa.Text, nullable=False, server_default="[]"),
    sa.Column("interests", sa.Text, nullable=False, server_default="[]"),
    sa.Column("topics", sa.Text, nullable=False, server_default="[]"),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("status", sa.String(20), nullable=False, server_default="active"),
    sa.Column("format", sa.String(20), nullable=False, server_default="html"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # No mail before this time (the preference page's pause); NULL: not paused.
    sa.Column("paused_until", UTCDateTime),
    sa.Column("local_hour", sa.Integer),
    # Why the status last changed when a bounce, complaint or unsubscribe mail changed it.
    sa.Column("status_reason", sa.Text),
)

outbox_table = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id"), nullable=False),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("state", sa.String(20), nullable=False, server_default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_try", UTCDateTime),
    sa.Column("claim", sa.String(100)),
    sa.Column("claimed_at", UTCDateTime),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("reply", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.Column("message_id", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("edition_id", "subscriber_id", name="uq_outbox_edition_subscriber"),
    # Claims read "queued rows of this edition after id N, in id order": with id in the
    # index, PostgreSQL starts at N instead of walking past every row already sent.
    sa.Index("ix_outbox_edition_state_id", "edition_id", "state", "id"),
)

# -- bounces, complaints and unsubscribe mails (store/bounces.py) ---------------------------

bounce_events_table = sa.Table(
    "bounce_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # The report's own Message-ID (or a service's event id): reading a mailbox or a
    # webhook delivery again never counts one report twice.
    sa.Column("source_id", sa.String(400), nullable=False, unique=True),
    sa.Column("kind", sa.String(20), nullable=False),  # hard, soft, complaint, unsubscribe
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id")),
    sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id")),
    sa.Column("outbox_id", sa.Integer),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Index("ix_bounce_events_edition_kind", "edition_id", "kind"),
    sa.Index("ix_bounce_events_subscriber", "subscriber_id"),
)

# -- the LLM summary cache (services/llm.py) -------------------------------------------------

llm_summaries_table = sa.Table(
    "llm_summaries",
    metadata,
    sa.Column("entry_key", sa.Text, primary_key=True),
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("prompt", sa.String(64), primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)


# -- the web app's abuse limits and confirmation links (serve/, store/web_limits.py) ---------

web_limits_table = sa.Table(
    "web_limits",
    metadata,
    # "client:203.0.113.0/32", "rcpt-hour:ada@example.org"...: one counter per key and window.
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("window_start", UTCDateTime, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Index("ix_web_limits_expires_at", "expires_at"),
)

web_confirmations_table = sa.Table(
    "web_confirmations",
    metadata,
    # The one confirmation link of an address that still works: its token carries the
    # nonce, and confirming deletes the row (single use).
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("nonce", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_web_confirmations_created_at", "created_at"),
)
