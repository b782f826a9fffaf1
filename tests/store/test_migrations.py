"""Schema revisions: new databases at the head, a database written before migrations (by
commit 0279f88) upgraded in place with every row kept, older and newer schemas refused
where they should be, and ``schema.py`` in step with the migrations."""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from newsletter.models import Subscriber
from newsletter.store import migrate, outbox, schema
from newsletter.store.database import Store
from newsletter.store.engine import make_engine
from newsletter.store.subscribers import all_subscribers, save_subscriber

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "main-0279f88.sqlite"
T0 = datetime(2026, 3, 2, 7, 30, 15, 123456, tzinfo=UTC)
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
BASELINE_TABLES = {
    "sources",
    "entries",
    "editions",
    "edition_entries",
    "subscribers",
    "outbox",
    "llm_summaries",
}
"""The tables of revision 0001 (and of the 0279f88 fixture)."""
TABLES = BASELINE_TABLES | {"web_limits", "web_confirmations", "bounce_events"}


def old_db(tmp_path: Path, name: str = "old.sqlite") -> Path:
    """A copy of the database written by 0279f88 (tests change their copy only)."""
    path = tmp_path / name
    shutil.copyfile(FIXTURE, path)
    return path


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def current_db(tmp_path: Path, *sql: str) -> Path:
    """A database made by this version (``tmp_path/db.sqlite``), then changed by ``sql``."""
    path = tmp_path / "db.sqlite"
    Store(url(path)).close()
    with sqlite3.connect(path) as db:
        for statement in sql:
            db.execute(statement)
    db.close()
    return path


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, as SQLite returns it (no SQLAlchemy in between)."""
    with sqlite3.connect(path) as db:
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'alembic_version'"
            )
        ]
        out = {n: db.execute(f"SELECT * FROM {n} ORDER BY rowid").fetchall() for n in names}
    db.close()
    return out


def as_before(
    after: dict[str, list[tuple[Any, ...]]], before: dict[str, list[tuple[Any, ...]]]
) -> dict[str, list[tuple[Any, ...]]]:
    """``after``'s tables of ``before`` without the columns added since (they come last,
    NULL in old rows: checked here), so old rows compare equal when kept."""
    out = {}
    for table, rows in before.items():
        width = len(rows[0]) if rows else 0
        out[table] = [r[:width] if rows else r for r in after[table]]
        assert all(v is None for r in after[table][: len(rows)] for v in r[width:]), table
    return out


def revision(path: Path) -> str | None:
    """The revision as Alembic itself reads it."""
    engine = make_engine(url(path))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def differences(path: Path) -> list[Any]:
    """Alembic's autogenerate comparison of ``schema.metadata`` with the database."""
    engine = make_engine(url(path))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts=migrate.compare_options())
            return list(compare_metadata(context, schema.metadata))
    finally:
        engine.dispose()


# -- the head ---------------------------------------------------------------------------------


def test_schema_revision_is_the_single_head_of_the_migrations() -> None:
    assert migrate.head_revision() == schema.REVISION


def test_schema_holds_every_table_and_imports_add_none() -> None:
    # In a fresh interpreter: every module that once added tables on import, imported.
    code = (
        "import newsletter.store.schema as s; before = sorted(s.metadata.tables);"
        "import newsletter.services.llm, newsletter.store.outbox, newsletter.serve.web,"
        " newsletter.serve.daemon, newsletter.cli.send, newsletter.cli.subscribers;"
        "assert sorted(s.metadata.tables) == before, before; print(','.join(before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(out.stdout.strip().split(",")) == TABLES


def test_the_daemons_job_table_is_left_to_apscheduler() -> None:
    from newsletter.serve.jobs import JOBSTORE_TABLE

    assert JOBSTORE_TABLE in schema.UNMANAGED_TABLES
    assert JOBSTORE_TABLE not in schema.metadata.tables


def test_a_new_database_is_created_at_the_head(tmp_path: Path) -> None:
    path = tmp_path / "new" / "db.sqlite"
    with Store(url(path)) as store:
        assert store.schema_state.status == "empty"
        names = set(sa.inspect(store.engine).get_table_names())
    assert names == TABLES | {"alembic_version"}
    assert revision(path) == schema.REVISION
    assert differences(path) == []
    with Store(url(path)) as store:
        assert store.schema_state.status == "current"


def test_the_stamp_is_the_table_alembic_creates(tmp_path: Path) -> None:
    Store(url(tmp_path / "ours.sqlite")).close()
    engine = make_engine(url(tmp_path / "alembics.sqlite"))
    with engine.begin() as conn:
        command.stamp(migrate.alembic_config(conn), "head")
    engine.dispose()

    def ddl(path: Path) -> str:
        with sqlite3.connect(path) as db:
            (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'alembic_version'")
        db.close()
        return str(sql[0])

    assert ddl(tmp_path / "ours.sqlite") == ddl(tmp_path / "alembics.sqlite")


def test_memory_databases_work_without_loading_alembic(tmp_path: Path) -> None:
    # One-off digests use sqlite:// and start fast: the tables come from create_all at
    # the head revision, and opening a current file database does not load Alembic either.
    code = f"""
import sys
from datetime import UTC, datetime
from newsletter.models import Entry
from newsletter.store.database import Store
with Store("sqlite://") as s:
    assert s.schema_state.status == "empty"
    s.add_entries([Entry(id="1", source="s", title="t")], now=datetime.now(UTC))
    assert s.count_entries() == 1
for _ in range(2):
    Store({url(tmp_path / "f.sqlite")!r}).close()
print(sorted(m for m in sys.modules if m.startswith("alembic")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_migrations_from_empty_give_the_same_schema(tmp_path: Path) -> None:
    path = tmp_path / "migrated.sqlite"
    engine = make_engine(url(path))
    with engine.begin() as conn:
        migrate.run_migrations(conn)
    engine.dispose()
    assert revision(path) == schema.REVISION
    assert differences(path) == []


def test_the_baseline_goes_down_and_up_again(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    Store(url(path)).close()
    engine = make_engine(url(path))
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "base")
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) == {"alembic_version"}
    with engine.begin() as conn:
        migrate.run_migrations(conn)
    engine.dispose()
    assert differences(path) == []


def test_the_sql_of_the_migrations_for_a_database_servers_operator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = migrate.alembic_config()
    cfg.set_main_option("sqlalchemy.url", "postgresql://user@db.example.org/news")
    command.upgrade(cfg, "head", sql=True)
    sql = capsys.readouterr().out
    for table in TABLES:
        assert f"CREATE TABLE {table} (" in sql
    assert "CREATE INDEX ix_outbox_edition_state_id" in sql
    assert "INSERT INTO alembic_version (version_num) VALUES ('0001')" in sql
    assert f"SET version_num='{schema.REVISION}'" in sql


def test_the_comparison_sees_a_missing_column(tmp_path: Path) -> None:
    path = current_db(tmp_path, "ALTER TABLE entries DROP COLUMN comments_url")
    assert [d[0] for d in differences(path)] == ["add_column"]


@pytest.mark.parametrize(
    ("inspected", "rendered", "differs"),
    [
        ("('')", "''", False),
        ("'0'", "'0'", False),
        ("'it''s'", "'it''s'", False),
        ("'new'", "'old'", True),
        ("('')", "'[]'", True),
    ],
)
def test_server_default_comparison(inspected: str, rendered: str, differs: bool) -> None:
    assert migrate.server_default_differs(None, None, None, inspected, None, rendered) is differs


# -- a database written by 0279f88 ----------------------------------------------------------


def test_the_fixture_is_from_before_migrations() -> None:
    tables = set(dump(FIXTURE))
    assert tables == BASELINE_TABLES | {"apscheduler_jobs"}
    assert revision(FIXTURE) is None


def test_a_database_from_main_0279f88_is_upgraded_with_every_row_kept(tmp_path: Path) -> None:
    path = old_db(tmp_path)
    before = dump(path)
    counts = {t: len(rows) for t, rows in before.items()}
    assert counts == {
        "sources": 4,
        "entries": 40,
        "editions": 3,
        "edition_entries": 18,
        "subscribers": 6,
        "outbox": 7,
        "llm_summaries": 3,
        "apscheduler_jobs": 1,
    }
    with Store(url(path)) as store:
        assert (store.schema_state.status, store.schema_state.unversioned) == ("older", True)

        states = store.source_states()
        assert states["broken"].error_count == 3
        assert states["broken"].retry_after == datetime(2026, 3, 2, 13, 30, 15, 123456, UTC)
        assert states["hn"].fetch_url == "https://hnrss.org/frontpage"
        assert states["arxiv"].etag == 'W/"abc123"' and states["arxiv"].last_ok == T0
        assert states["fresh"].status == "new"

        assert store.count_entries() == 40
        paper = {e.id: e for e in store.entries(sources=["arxiv"])}["arxiv-3"]
        assert paper.title == "Paper 3: test-time compute, é and 漢字"
        assert paper.tags == ("cs.AI", "cs.LG") and paper.author == "Ada Lovelace"
        hn = store.entries(sources=["hn"], limit=1)[0]
        assert hn.engagement.points is not None and hn.comments_url

        daily = store.edition("daily", "2026-03-01")
        assert daily is not None and daily.title == "Daily digest: 1 March"
        assert [e.id for e in store.edition_entries(daily.id)] == ["arxiv-3", "arxiv-1", "arxiv-2"]
        assert len(store.editions()) == 3

        subs = {s.email: s for s in all_subscribers(store)}
        assert subs["bob@example.org"].topics == ("ML", "Systems")
        assert subs["ada@example.org"].interests == ("llm", "agents")
        assert subs["cy@example.org"].format == "markdown"
        assert subs["fay@example.org"].status == "unsubscribed"

        assert outbox.counts(store, daily.id) == {
            "queued": 1,
            "sending": 1,
            "sent": 1,
            "retry": 1,
            "failed": 1,
            "suppressed": 1,
        }
        [sent] = outbox.rows(store, daily.id, "sent")
        assert sent.reply == "250 2.0.0 Ok: queued as ABC"

        with store.engine.connect() as conn:
            cached = conn.execute(sa.select(schema.llm_summaries_table)).mappings().all()
        assert {r["text"] for r in cached} >= {"Agents that plan, with é and 漢字."}
        assert {r["created_at"] for r in cached} == {T0}

        # And it is written to as usual afterwards.
        save_subscriber(store, Subscriber(email="new@example.org", topics=("ML",)), now=NOW)
        store.create_edition("daily", "2026-11-28", [("hn", hn.id)], now=NOW)

    after = dump(path)
    for table, rows in as_before(after, before).items():
        assert rows[: len(before[table])] == before[table], table
    assert revision(path) == schema.REVISION
    assert differences(path) == []


def test_a_database_from_before_topics_is_upgraded(tmp_path: Path) -> None:
    path = old_db(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE subscribers DROP COLUMN topics")
    db.close()
    with Store(url(path)) as store:
        subs = {s.email: s for s in all_subscribers(store)}
        assert len(subs) == 6 and {s.topics for s in subs.values()} == {()}
        assert subs["ada@example.org"].interests == ("llm", "agents")
    assert revision(path) == schema.REVISION
    assert differences(path) == []


def test_a_hand_made_subscribers_table_from_before_topics(tmp_path: Path) -> None:
    # The DDL of an old release, written by hand: types and defaults spelled differently.
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            """CREATE TABLE subscribers (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                email VARCHAR(320) NOT NULL UNIQUE,
                name TEXT NOT NULL DEFAULT '',
                digests TEXT NOT NULL DEFAULT '[]',
                interests TEXT NOT NULL DEFAULT '[]',
                timezone VARCHAR(64) NOT NULL DEFAULT 'UTC',
                status VARCHAR(20) NOT NULL DEFAULT 'active',
                format VARCHAR(20) NOT NULL DEFAULT 'html',
                created_at DATETIME NOT NULL,
                updated_at DATETIME NOT NULL
            )"""
        )
        db.execute(
            "INSERT INTO subscribers (email, interests, created_at, updated_at)"
            " VALUES ('old@example.org', '[\"llm\"]', '2026-01-01 00:00:00',"
            " '2026-01-01 00:00:00')"
        )
    db.close()
    with Store(url(path)) as store:
        [old] = all_subscribers(store)
        assert (old.email, old.interests, old.topics) == ("old@example.org", ("llm",), ())
        save_subscriber(store, Subscriber(email="new@example.org", topics=("ML",)), now=NOW)
        ed, _ = store.create_edition("daily", "2026-11-28", [], now=NOW)
        outbox.enqueue(store, ed.id, all_subscribers(store), now=NOW)
        rows = outbox.claim(store, ed.id, now=NOW, limit=10, prefix="t")
        assert [(r.email, r.interests, r.topics) for r in rows] == [
            ("old@example.org", ("llm",), ()),
            ("new@example.org", (), ("ML",)),
        ]
    with Store(url(path)) as store:
        assert store.schema_state.status == "current"


def test_a_database_only_fetch_had_used_gets_the_other_tables(tmp_path: Path) -> None:
    # `newsletter fetch` on a new database created only the tables of the store module.
    path = old_db(tmp_path)
    with sqlite3.connect(path) as db:
        for table in ("outbox", "subscribers", "llm_summaries", "apscheduler_jobs"):
            db.execute(f"DROP TABLE {table}")
    db.close()
    with Store(url(path)) as store:
        assert store.count_entries() == 40
        assert all_subscribers(store) == []
    assert revision(path) == schema.REVISION
    assert differences(path) == []


def _open(path: str) -> None:
    Store(f"sqlite:///{path}").close()


def test_processes_opening_an_old_database_at_once_upgrade_it_once(tmp_path: Path) -> None:
    path = old_db(tmp_path)
    before = dump(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open, args=(str(path),)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    after = dump(path)
    assert as_before(after, before) == before
    assert revision(path) == schema.REVISION


# -- refusals ---------------------------------------------------------------------------------


def test_an_older_database_is_refused_when_not_upgraded_on_open(tmp_path: Path) -> None:
    path = old_db(tmp_path)
    with pytest.raises(migrate.SchemaOutdatedError) as caught:
        Store(url(path), upgrade=False)
    err = caught.value
    assert (err.database, err.current, err.expected) == (url(path), None, schema.REVISION)
    assert str(path) in str(err) and "`newsletter db upgrade`" in str(err)
    assert f"expects {schema.REVISION}" in str(err)
    assert revision(path) is None and dump(path) == dump(FIXTURE)


def test_a_newer_database_is_refused_even_for_sqlite(tmp_path: Path) -> None:
    path = current_db(tmp_path, "UPDATE alembic_version SET version_num = '9999'")
    for upgrade in (None, True):
        with pytest.raises(migrate.SchemaTooNewError) as caught:
            Store(url(path), upgrade=upgrade)
        assert (caught.value.current, caught.value.expected) == ("9999", schema.REVISION)
        assert "9999" in str(caught.value) and "newer" in str(caught.value)


@pytest.mark.parametrize(
    ("database", "auto"),
    [
        ("sqlite:////var/lib/newsletter/db.sqlite", True),
        ("sqlite:///relative.sqlite", True),
        ("sqlite://", True),
        ("sqlite+pysqlite:///x.sqlite", True),
        ("postgresql://user:secret@db.example.org/news", False),
        ("mysql+pymysql://db.example.org/news", False),
    ],
)
def test_only_sqlite_upgrades_on_open(database: str, auto: bool) -> None:
    assert migrate.auto_upgrades(database) is auto


def test_messages_hide_the_password() -> None:
    shown = migrate.display_url("postgresql://user:secret@db.example.org/news")
    assert "secret" not in shown and "db.example.org/news" in shown
