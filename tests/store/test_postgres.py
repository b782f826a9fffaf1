"""What is particular to PostgreSQL: the migrations and ``newsletter db`` on a server, the
URL schemes, several processes opening a new database at once, and claims that skip the
rows another sender holds. (The store's other tests run on both databases.)"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner, Result

from newsletter.cli import main
from newsletter.errors import StoreError
from newsletter.store import migrate, outbox, schema
from newsletter.store.database import Store
from newsletter.store.engine import make_engine, normalize_url
from newsletter.store.outbox import outbox_table
from newsletter.store.subscribers import all_subscribers
from tests.factories import seed_outbox, write_config
from tests.pg import PgCluster, database_url_for
from tests.support import open_at_once

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url_for(request, "postgres", tmp_path)


def differences(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts=migrate.compare_options())
            return list(compare_metadata(context, schema.metadata))
    finally:
        engine.dispose()


def revisions(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return []
            return [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
    finally:
        engine.dispose()


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_migrations_give_the_schema_and_go_down_and_up_again(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        migrate.run_migrations(conn)
    assert revisions(pg_url) == [schema.REVISION]
    assert differences(pg_url) == []
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "base")
    with engine.begin() as conn:
        migrate.run_migrations(conn)
    engine.dispose()
    assert differences(pg_url) == []


def test_a_new_database_created_on_open_is_the_migrated_schema(pg_url: str) -> None:
    with Store(pg_url) as store:
        assert store.schema_state.status == "empty"
    assert differences(pg_url) == [] and revisions(pg_url) == [schema.REVISION]


def test_a_server_is_upgraded_by_db_upgrade_only(pg_url: str, tmp_path: Path) -> None:
    # A database from before migrations: no version table, subscribers without topics.
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        # The tables of that time: everything but what later revisions added.
        later = {"web_limits", "web_confirmations", "bounce_events"}
        schema.metadata.create_all(
            conn, tables=[t for t in schema.metadata.sorted_tables if t.name not in later]
        )
        conn.exec_driver_sql("ALTER TABLE subscribers DROP COLUMN topics")
        conn.exec_driver_sql("ALTER TABLE subscribers DROP COLUMN paused_until")
        conn.exec_driver_sql("ALTER TABLE subscribers DROP COLUMN local_hour")
        conn.exec_driver_sql("ALTER TABLE entries DROP COLUMN media")
        conn.exec_driver_sql("DROP INDEX ix_outbox_edition_state_id")
        conn.exec_driver_sql("CREATE INDEX ix_outbox_edition_state ON outbox (edition_id, state)")
        conn.exec_driver_sql("ALTER TABLE subscribers DROP COLUMN status_reason")
        conn.exec_driver_sql(
            "INSERT INTO subscribers (email, created_at, updated_at) "
            "VALUES ('bob@example.org', now(), now())"
        )
    engine.dispose()
    cfg = write_config(
        tmp_path, database_url=pg_url, sources=None, digests=[{"name": "daily"}], mail=None
    )
    refused = run("subscribers", "list", "--config", cfg)
    assert refused.exit_code == 1 and "run `newsletter db upgrade`" in refused.stderr
    assert run("db", "status", "--check", "--config", cfg).exit_code == 1
    upgraded = run("db", "upgrade", "--config", cfg)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"to {schema.REVISION}" in upgraded.output
    listed = run("subscribers", "list", "--config", cfg)
    assert listed.exit_code == 0 and "bob@example.org" in listed.stdout
    assert differences(pg_url) == []


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_every_postgres_scheme_uses_psycopg_3(scheme: str, pg_url: str) -> None:
    url = pg_url.replace("postgresql+psycopg://", f"{scheme}://")
    assert normalize_url(url) == pg_url
    with Store(url) as store:
        assert store.engine.driver == "psycopg"
        assert store.count_entries() == 0


def test_an_unreachable_server_is_a_store_error(pg_cluster: PgCluster) -> None:
    with pytest.raises(StoreError, match=r"database postgresql\+psycopg://\S*/no_such_database"):
        Store(f"postgresql://postgres:secret@127.0.0.1:{pg_cluster.port}/no_such_database")


def test_processes_opening_a_new_database_at_once_all_succeed(pg_url: str) -> None:
    assert open_at_once(pg_url) == []
    assert revisions(pg_url) == [schema.REVISION]


def test_a_claim_skips_the_rows_another_sender_is_claiming(pg_url: str) -> None:
    with Store(pg_url) as store:
        eid = seed_outbox(store, [f"u{i}@example.org" for i in range(4)], now=NOW)
        t = outbox_table
        with store.begin() as other:
            # Another sender is in the middle of its claim: it holds the first two rows.
            held = other.execute(
                sa.select(t.c.id).order_by(t.c.id).limit(2).with_for_update(skip_locked=True)
            ).all()
            assert len(held) == 2
            mine = outbox.claim(store, eid, now=NOW, limit=4, prefix="h:1:x")
            assert [r.id for r in mine] == [r.id for r in outbox.rows(store, eid)][2:]
        assert outbox.counts(store, eid)["queued"] == 2


def test_enqueue_by_two_senders_at_once_adds_each_row_once(pg_url: str) -> None:
    with Store(pg_url) as store:
        eid = seed_outbox(store, [f"u{i}@example.org" for i in range(3)], now=NOW)
        subs = all_subscribers(store)
        with store.begin() as conn:
            conn.execute(sa.delete(outbox_table))
        with store.begin() as conn:
            # The other sender's rows are in, not yet committed: ours wait, then skip them.
            conn.execute(
                sa.insert(outbox_table).values(
                    edition_id=eid, subscriber_id=subs[0].id, email=subs[0].email, created_at=NOW
                )
            )
            added: list[int] = []
            thread = threading.Thread(
                target=lambda: added.append(outbox.enqueue(store, eid, subs, now=NOW))
            )
            thread.start()
            thread.join(0.3)
            assert thread.is_alive()  # waiting for the other transaction
        thread.join(30)
        assert added == [2]
        assert outbox.counts(store, eid)["queued"] == 3
