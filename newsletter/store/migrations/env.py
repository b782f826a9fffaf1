"""Alembic's environment for the store's migrations.

The program runs them through ``newsletter.store.migrate``, which passes an open
connection (``config.attributes["connection"]``) inside its own transaction. Alembic's
command line (see ``alembic.ini`` beside this file) passes a URL instead:
``-x url=...``, else ``NEWSLETTER_DATABASE_URL``.
"""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from newsletter.store.migrate import compare_options

config = context.config


def _options(dialect_name: str) -> dict[str, Any]:
    return {
        **compare_options(),
        # SQLite changes most of a table only by copying it: Alembic's batch mode does that.
        "render_as_batch": dialect_name == "sqlite",
    }


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "NEWSLETTER_DATABASE_URL"
    )
    url = url or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database: alembic -x url=sqlite:///path ...")
    return url


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, **_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """``alembic upgrade --sql``: the SQL, printed, for a database server's operator."""
    import sqlalchemy as sa

    url = _url()
    context.configure(url=url, literal_binds=True, **_options(sa.make_url(url).get_backend_name()))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    from newsletter.store.engine import make_engine

    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            run_on(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
