"""LazyStore: source states read and bodiless outcomes written with sqlite3 exactly as the
SQLAlchemy store does it, which opens only when it must. Real SQLite files throughout."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsletter.models import Entry
from newsletter.sources import fetchstate
from newsletter.sources.fetchstate import LazyStore, sqlite_path
from newsletter.store.database import Store, UTCDateTime, sources_table

NOW = datetime(2026, 11, 29, 6, 30, 15, 123456, tzinfo=UTC)
FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"


def rows(path: Path) -> list[tuple[Any, ...]]:
    """The sources table as the driver returns it: text, not SQLAlchemy's types."""
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM sources ORDER BY name").fetchall()


def seeded(tmp_path: Path) -> Path:
    """A database with three sources, as a first fetch leaves it."""
    path = tmp_path / "seed.sqlite"
    with Store(f"sqlite:///{path}") as store:
        store.ensure_sources([("a", "https://a.test/feed"), ("b", "https://b.test/feed")])
        store.ensure_sources([("c", "https://c.test/feed")])
        store.record_fetch(
            [Entry(id="1", source="a", title="One", link="https://a.test/1")],
            {
                "a": {"etag": '"v1"', "status": "ok", "last_ok": NOW, "last_fetched": NOW},
                "b": {"last_modified": "Sat, 28 Nov 2026 06:00:00 GMT", "status": "ok"},
                "c": {"status": "error", "error_count": 2, "last_error": "HTTP 500"},
            },
            now=NOW,
        )
    return path


def copy(path: Path, name: str) -> Path:
    target = path.with_name(name)
    shutil.copy(path, target)
    return target


# Outcomes of a warm run: a 304, a failure that asks to wait, a source gone for good.
WARM_UPDATES: dict[str, dict[str, Any]] = {
    "a": {
        "last_fetched": NOW + timedelta(hours=1),
        "status": "ok",
        "error_count": 0,
        "last_error": None,
        "last_ok": NOW + timedelta(hours=1),
        "etag": '"v1"',
        "last_modified": None,
    },
    "b": {
        "last_fetched": NOW + timedelta(hours=1),
        "status": "error",
        "error_count": 1,
        "last_error": "HTTP 429 Too Many Requests: will wait",
        "retry_after": datetime(2026, 11, 29, 9, 0, tzinfo=UTC),
    },
    "c": {"last_fetched": NOW.replace(microsecond=0), "status": "gone", "error_count": 3},
}


def test_columns_are_the_tables() -> None:
    assert tuple(c.name for c in sources_table.columns) == fetchstate.COLUMNS
    times = {c.name for c in sources_table.columns if isinstance(c.type, UTCDateTime)}
    assert times == fetchstate.TIME_COLUMNS


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////var/lib/n/db.sqlite", Path("/var/lib/n/db.sqlite")),
        ("sqlite:///rel/db.sqlite", Path("rel/db.sqlite")),
        ("sqlite+pysqlite:////x.db", Path("/x.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:////x.db?mode=ro", None),
        ("postgresql://u@h/db", None),
    ],
)
def test_sqlite_path(url: str, expected: Path | None) -> None:
    assert sqlite_path(url) == expected


def test_reads_states_as_the_store_does_without_opening_it(tmp_path: Path) -> None:
    path = seeded(tmp_path)
    pairs = [
        ("a", "https://a.test/feed"),
        ("b", "https://b.test/feed"),
        ("c", "https://c.test/feed"),
    ]
    with Store(f"sqlite:///{path}") as store:
        expected = store.ensure_sources(pairs)
    before = rows(path)
    with LazyStore(f"sqlite:///{path}") as lazy:
        assert lazy.ensure_sources(pairs) == expected
        assert not lazy.opened_store
    assert expected["a"].last_ok == NOW and expected["a"].etag == '"v1"'
    assert rows(path) == before


def test_writes_warm_outcomes_byte_for_byte_as_the_store(tmp_path: Path) -> None:
    path = seeded(tmp_path)
    by_store, by_lazy = copy(path, "store.sqlite"), copy(path, "lazy.sqlite")
    pairs = [
        ("a", "https://a.test/feed"),
        ("b", "https://b.test/feed"),
        ("c", "https://c.test/feed"),
    ]
    with Store(f"sqlite:///{by_store}") as store:
        store.ensure_sources(pairs)
        assert store.record_fetch([], WARM_UPDATES, now=NOW) == []
    with LazyStore(f"sqlite:///{by_lazy}") as lazy:
        lazy.ensure_sources(pairs)
        assert lazy.record_fetch([], WARM_UPDATES, now=NOW) == []
        assert not lazy.opened_store
    assert rows(by_lazy) == rows(by_store)
    assert rows(by_lazy) != rows(path)  # the updates did land
    # And read back through the store, the times are the ones written.
    with Store(f"sqlite:///{by_lazy}") as store:
        b = store.source_state("b")
    assert b is not None and b.retry_after == datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def test_entries_go_through_the_store_with_their_sources(tmp_path: Path) -> None:
    path = seeded(tmp_path)
    with LazyStore(f"sqlite:///{path}") as lazy:
        lazy.ensure_sources([("a", "https://a.test/feed")])
        new = lazy.record_fetch(
            [Entry(id="2", source="a", title="Two", link="https://a.test/2")],
            {"a": {"etag": '"v2"', "last_fetched": NOW}},
            now=NOW,
        )
        assert lazy.opened_store
        # Later bodiless outcomes go through the open store too.
        lazy.record_fetch([], {"a": {"status": "ok"}}, now=NOW)
    assert [e.id for e in new] == ["2"]
    with Store(f"sqlite:///{path}") as store:
        assert store.count_entries() == 2
        a = store.source_state("a")
    assert a is not None and a.etag == '"v2"'


@pytest.mark.parametrize(
    "pairs",
    [
        [("a", "https://a.test/feed"), ("new", "https://new.test/feed")],  # a new source
        [("a", "https://a.test/moved")],  # its URL changed in the config
    ],
)
def test_new_or_changed_sources_go_through_the_store(
    tmp_path: Path, pairs: list[tuple[str, str]]
) -> None:
    path = seeded(tmp_path)
    with Store(f"sqlite:///{copy(path, 'ref.sqlite')}") as store:
        expected = store.ensure_sources(pairs)
    with LazyStore(f"sqlite:///{path}") as lazy:
        assert lazy.ensure_sources(pairs) == expected
        assert lazy.opened_store
    assert rows(path) == rows(path.with_name("ref.sqlite"))


def test_missing_database_is_created_by_the_store(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "fresh.sqlite"
    with LazyStore(f"sqlite:///{path}") as lazy:
        states = lazy.ensure_sources([("a", "https://a.test/feed")])
        assert lazy.opened_store
    assert states["a"].status == "new"
    assert path.is_file()


def test_database_without_tables_is_left_to_the_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    with LazyStore(f"sqlite:///{path}") as lazy:
        lazy.ensure_sources([("a", "https://a.test/feed")])
        assert lazy.opened_store
    assert [r[0] for r in rows(path)] == ["a"]


def test_memory_database_uses_the_store() -> None:
    with LazyStore("sqlite://") as lazy:
        lazy.ensure_sources([("a", "https://a.test/feed")])
        assert lazy.opened_store


def test_unknown_column_is_refused(tmp_path: Path) -> None:
    path = seeded(tmp_path)
    with LazyStore(f"sqlite:///{path}") as lazy:
        lazy.ensure_sources([("a", "https://a.test/feed")])
        with pytest.raises(ValueError, match="not a column"):
            lazy.record_fetch([], {"a": {"status; DROP TABLE sources": "x"}}, now=NOW)
    assert len(rows(path)) == 3


WARM_RUN = textwrap.dedent(
    """
    import sys
    from newsletter.cli import main
    try:
        main(["fetch", "--config", sys.argv[1]])
    except SystemExit as exc:
        code = exc.code
    print("exit", code, "sqlalchemy" in sys.modules, "newsletter.sources.parse" in sys.modules)
    """
)


def test_warm_fetch_loads_neither_sqlalchemy_nor_parsers(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The point of LazyStore, checked in a real process: a run where every feed answers
    304 never imports SQLAlchemy or the parsers; a run with a changed feed does."""
    body = (FEEDS / "hackernews-frontpage.rss.xml").read_bytes()
    version = {"etag": '"v1"'}

    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == version["etag"]:
            return Response(status=304)
        return Response(body, headers={"ETag": version["etag"]})

    httpserver.expect_request("/hn.xml").respond_with_handler(handler)
    httpserver.expect_request("/gone.xml").respond_with_data("", status=410)
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'database_url = "sqlite:///{tmp_path / "db.sqlite"}"\n'
        f'[[sources]]\nname = "hn"\nurl = "{httpserver.url_for("/hn.xml")}"\n'
        f'[[sources]]\nname = "gone"\nurl = "{httpserver.url_for("/gone.xml")}"\n',
        encoding="utf-8",
    )

    def run() -> tuple[str, str]:
        done = subprocess.run(
            [sys.executable, "-c", WARM_RUN, str(cfg)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1], done.stderr

    cold, _ = run()
    assert cold == "exit 0 True True"
    warm, stderr = run()
    assert warm == "exit 0 False False", stderr
    assert "hn: not_modified" in stderr and "gone: skipped" in stderr
    version["etag"] = '"v2"'  # the feed changes: its body must be parsed and stored
    changed, stderr = run()
    assert changed == "exit 0 True True", stderr
    assert "hn: ok 30 new of 30" not in stderr and "hn: ok 0 new of 30" in stderr
    with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        hn = store.source_state("hn")
        assert store.count_entries() == 30
    assert hn is not None and hn.etag == '"v2"' and hn.error_count == 0
