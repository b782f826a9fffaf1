"""``newsletter db``: the database's schema revision, and upgrading it.

Every other command opens the database through ``Store``, which creates an empty one,
upgrades an older SQLite one by itself, and refuses an older database on a server (and
any newer one) with a message that names this command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from newsletter.cli.common import EXIT_FAILED, config_option, handle_errors, load_settings


@click.group()
def db() -> None:
    """Show the database's schema revision and upgrade it to this version's.

    SQLite databases are upgraded by any command that opens them; a database server
    (PostgreSQL, MySQL...) is upgraded only by `newsletter db upgrade`.
    """


@db.command("status")
@config_option
@click.option(
    "--check",
    is_flag=True,
    help="Exit with status 1 unless the database is at this version's revision.",
)
@handle_errors
def db_status(config_path: Path | None, check: bool) -> None:
    """Show the database, its schema revision and the one this version of newsletter
    expects, and what to do when they differ. Changes nothing."""
    from newsletter.store import migrate
    from newsletter.store.engine import make_engine

    url = load_settings(config_path).resolved_database_url()
    if migrate.missing_sqlite_file(url):
        # Connecting would create the file: say what is there without it.
        state = migrate.SchemaState(migrate.display_url(url), "empty", None)
    else:
        engine = make_engine(url)
        try:
            state = migrate.state(engine)
        finally:
            engine.dispose()
    click.echo(f"database: {state.database}")
    click.echo(f"revision: {state.describe()}")
    click.echo(f"expected: {state.head}")
    advice = {
        "current": "up to date",
        "empty": "empty: the tables are created when a command first uses it",
        "older": f"older: run `{migrate.UPGRADE_COMMAND}`"
        + (" (or any command: SQLite is upgraded on use)" if migrate.auto_upgrades(url) else ""),
        "newer": "newer than this version of newsletter: upgrade newsletter",
    }
    click.echo(f"status:   {advice[state.status]}")
    if check and state.status != "current":
        sys.exit(EXIT_FAILED)


@db.command("upgrade")
@config_option
@handle_errors
def db_upgrade(config_path: Path | None) -> None:
    """Upgrade the database's schema to this version's (Alembic migrations shipped with
    newsletter), in one transaction where the database allows it; an empty database is
    created. Back up a database server's data first."""
    from newsletter.store import migrate
    from newsletter.store.engine import make_engine

    url = load_settings(config_path).resolved_database_url()
    engine = make_engine(url)
    try:
        before = migrate.upgrade(engine)
    finally:
        engine.dispose()
    if before.status == "current":
        click.echo(f"{before.database}: already at revision {before.head}")
    elif before.status == "empty":
        click.echo(f"{before.database}: created at revision {before.head}")
    else:
        click.echo(f"{before.database}: upgraded from {before.describe()} to {before.head}")


COMMANDS = (db,)
"""The commands this module adds to ``newsletter`` (see ``newsletter.cli.LAZY_COMMANDS``)."""
