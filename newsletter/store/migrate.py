"""Schema revisions: which one a database is at, and bringing it to the code's.

The migrations are Alembic's, in ``newsletter/store/migrations``; ``schema.REVISION`` is
their head, the revision the code reads and writes. A database is one of:

- **empty** (none of the store's tables): created from ``schema.metadata`` and stamped
  with the head revision, in one transaction, without running the migrations;
- **current**: at the head revision; nothing to do;
- **older**: at an earlier revision, or *unversioned* (tables written before the store had
  migrations, with no ``alembic_version`` table): upgraded by ``upgrade`` (``newsletter
  db upgrade``), and on opening when the database is SQLite (``auto_upgrades``); any other
  database refuses to open (``SchemaOutdatedError``);
- **newer**: at a revision this code does not know (written by a later version): refuses
  to open (``SchemaTooNewError``), and ``upgrade`` cannot help.

Opening a current database costs two small queries and does not import Alembic (a tenth
of a second): only an upgrade, or a revision other than the head, loads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter.errors import SchemaError, SchemaOutdatedError, SchemaTooNewError, StoreError
from newsletter.store import schema

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
"""Alembic's script folder (``env.py`` and ``versions/``); ships inside the package."""
VERSION_TABLE = "alembic_version"
UPGRADE_COMMAND = "newsletter db upgrade"

Status = Literal["empty", "current", "older", "newer"]

_SCHEMA_LOCK = 0x6E657773
"""PostgreSQL advisory lock key held while the schema is created or upgraded ("news")."""

_version_metadata = sa.MetaData()
# Alembic's own version table, as Alembic creates it: a new database is stamped without
# loading Alembic (a test checks that Alembic reads the stamp back).
_version_table = sa.Table(
    VERSION_TABLE,
    _version_metadata,
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database stands: its revision and the code's."""

    database: str
    """The database URL, without its password."""
    status: Status
    current: str | None
    """The database's revision; None for an empty or unversioned database."""
    head: str = schema.REVISION
    unversioned: bool = False
    """Tables from before migrations, without an ``alembic_version`` table."""

    def describe(self) -> str:
        """The database's revision in words: ``0001``, ``none (empty)``..."""
        if self.current is not None:
            return self.current
        return "none (unversioned: created before migrations)" if self.unversioned else "none"

    def error(self) -> SchemaError:
        """The error to raise for a database that is older or newer than the code."""
        where = f"the database {self.database}"
        if self.status == "newer":
            return SchemaTooNewError(
                f"{where} is at schema revision {self.describe()}, newer than this version "
                f"of newsletter knows (it expects {self.head}): it was upgraded by a later "
                "version; run that version, or restore a backup taken before the upgrade",
                database=self.database,
                current=self.current,
                expected=self.head,
            )
        return SchemaOutdatedError(
            f"{where} is at schema revision {self.describe()}, and this version of "
            f"newsletter expects {self.head}: back it up, then run `{UPGRADE_COMMAND}` "
            "(with the same --config)",
            database=self.database,
            current=self.current,
            expected=self.head,
        )


def display_url(url: str | sa.URL) -> str:
    """A database URL fit for a message: without its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return str(url)


def auto_upgrades(url: str | sa.URL) -> bool:
    """Whether opening this database upgrades an older schema by itself: yes for SQLite
    (a file, or memory, that only this program uses; its schema changes are transactional,
    so a failed upgrade leaves the file as it was); no for a database server, whose
    upgrades are the operator's to schedule (``newsletter db upgrade``)."""
    try:
        return sa.make_url(url).get_backend_name() == "sqlite"
    except SQLAlchemyError:
        return False


def missing_sqlite_file(url: str | sa.URL) -> bool:
    """Whether ``url`` is an SQLite file that does not exist yet (connecting creates it)."""
    try:
        parsed = sa.make_url(url)
    except SQLAlchemyError:
        return False
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return False
    return not path.startswith("file:") and not Path(path).expanduser().exists()


def read_state(conn: Connection, database: str = "") -> SchemaState:
    """Where the database on ``conn`` stands (see the module's docstring)."""
    names = set(sa.inspect(conn).get_table_names())
    if VERSION_TABLE not in names:
        if names & set(schema.metadata.tables):
            return SchemaState(database, "older", None, unversioned=True)
        return SchemaState(database, "empty", None)
    revisions = [str(r) for r in conn.execute(sa.select(_version_table.c.version_num)).scalars()]
    if revisions == [schema.REVISION]:
        return SchemaState(database, "current", schema.REVISION)
    current = ", ".join(revisions) if revisions else None
    if not revisions:
        # A version table and no revision: a stamp was removed, the tables are unknown.
        return SchemaState(database, "older", None, unversioned=bool(names - {VERSION_TABLE}))
    known = _known_revisions()
    status: Status = "older" if all(r in known for r in revisions) else "newer"
    return SchemaState(database, status, current)


def ensure_schema(engine: Engine, *, upgrade: bool, database: str = "") -> SchemaState:
    """Make the database usable by this code, in one transaction: create an empty one at
    the head revision, upgrade an older one when ``upgrade`` is true, and raise
    ``SchemaError`` for an older one otherwise and for a newer one. Returns the state it
    found."""
    database = database or display_url(engine.url)
    try:
        with engine.begin() as conn:
            state = read_state(conn, database)
            if state.status != "current" and engine.dialect.name == "postgresql":
                # Two processes opening a new database at once: one creates the tables,
                # the other waits, then finds them (SQLite's BEGIN IMMEDIATE does this).
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
                state = read_state(conn, database)
            if state.status == "empty":
                create_at_head(conn)
            elif state.status == "newer" or (state.status == "older" and not upgrade):
                raise state.error()
            elif state.status == "older":
                run_migrations(conn)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot set up the database {database}: {exc}") from None
    return state


def upgrade(engine: Engine, *, database: str = "") -> SchemaState:
    """Bring the database to the head revision (``newsletter db upgrade``): creates an
    empty database, migrates an older one, and raises ``SchemaTooNewError`` for a newer
    one. Returns the state it found."""
    return ensure_schema(engine, upgrade=True, database=database)


def state(engine: Engine, *, database: str = "") -> SchemaState:
    """Where the database stands, without changing it."""
    database = database or display_url(engine.url)
    try:
        with engine.connect() as conn:
            return read_state(conn, database)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database {database}: {exc}") from None


def create_at_head(conn: Connection) -> None:
    """Create every table of ``schema`` and stamp the head revision (an empty database:
    the same schema as the migrations give, without running them)."""
    schema.metadata.create_all(conn)
    _version_metadata.create_all(conn)
    conn.execute(sa.insert(_version_table).values(version_num=schema.REVISION))


def alembic_config(conn: Connection | None = None) -> Config:
    """Alembic's configuration for the shipped migrations; with ``conn``, ``env.py`` runs
    them on that connection, inside its transaction."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def run_migrations(conn: Connection, revision: str = "heads") -> None:
    """Run the migrations from the database's revision to ``revision`` on ``conn``."""
    from alembic import command
    from alembic.util import CommandError

    try:
        command.upgrade(alembic_config(conn), revision)
    except CommandError as exc:
        database = display_url(conn.engine.url)
        raise StoreError(f"cannot upgrade the database {database}: {exc}") from None


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's filter: the tables the migrations do not manage stay out of comparisons."""
    return not (type_ == "table" and name in schema.UNMANAGED_TABLES)


_CAST = re.compile(r"::[A-Za-z_ ]+(\(\d+\))?$")
"""PostgreSQL's cast on a reflected default: ``'new'::character varying``, ``''::text``."""


def _unquote(default: str) -> str:
    text = default.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    text = _CAST.sub("", text)
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1].replace("''", "'")
    return text


def server_default_differs(
    context: Any,
    inspected_column: Any,
    metadata_column: Any,
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Alembic's server default comparison, without its false alarms: SQLite reflects
    ``DEFAULT ''`` as ``('')``, PostgreSQL as ``''::text``; None leaves other cases to
    Alembic."""
    if inspected_default is None or rendered_metadata_default is None:
        return None
    return _unquote(inspected_default) != _unquote(rendered_metadata_default)


def compare_options() -> dict[str, Any]:
    """How Alembic compares ``schema.metadata`` with a database (``env.py`` for
    ``alembic revision --autogenerate``, and the test that keeps both in step)."""
    return {
        "target_metadata": schema.metadata,
        "include_name": include_name,
        "compare_type": True,
        "compare_server_default": server_default_differs,
    }


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    return {s.revision for s in scripts.walk_revisions()}


def head_revision() -> str:
    """The head of the shipped migrations (read from the scripts; ``schema.REVISION``
    says the same, a test checks it)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


__all__ = [
    "SchemaError",
    "SchemaOutdatedError",
    "SchemaState",
    "SchemaTooNewError",
    "auto_upgrades",
    "ensure_schema",
    "read_state",
    "state",
    "upgrade",
]
