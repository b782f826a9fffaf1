"""Issue 11, finding 8: a fault of the database itself (a corrupt page, a read-only
file) ends a command with one clear error naming the database and the likely cause, exit
code 1, no traceback; and nothing already stored is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.store.database import Store
from tests.factories import FEEDS, db_url, make_papers, seeded_store, write_config

ENV = {"NEWSLETTER_SECRET_KEY": "test-secret", "NEWSLETTER_SMTP_PASSWORD": ""}
COMMANDS = [
    ("fetch",),
    ("digest", "--no-fetch"),
    ("send",),
    ("subscribers", "add", "ada@example.org"),
]


def _corrupt(path: Path) -> None:
    """Overwrite the start of every other page after the first two (the schema stays
    readable, the tables' pages do not)."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        for offset in range(4096 * 2, size, 4096 * 2):
            f.seek(offset)
            f.write(b"\x07" * 200)


def _config(tmp_path: Path, database_url: str) -> Path:
    source = {"name": "papers", "url": str(FEEDS / "arxiv-cs.xml")}
    return write_config(tmp_path, database_url=database_url, sources=[source])


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_a_corrupt_database_is_one_clear_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    seeded_store(db_url(tmp_path), entries=make_papers(300), subscribers=[1, 2]).close()
    database = tmp_path / "db.sqlite"
    _corrupt(database)
    config = _config(tmp_path, db_url(tmp_path))
    result = CliRunner().invoke(main, [*args, "--config", str(config)], env=ENV)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "db.sqlite" in result.output
    assert "corrupt" in result.output


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_a_read_only_database_is_one_clear_error_and_keeps_its_data(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    seeded_store(db_url(tmp_path), entries=make_papers(30), subscribers=[1]).close()
    database = tmp_path / "db.sqlite"
    before = database.read_bytes()
    read_only = f"sqlite:///file:{database}?mode=ro&uri=true"
    config = _config(tmp_path, read_only)
    result = CliRunner().invoke(main, [*args, "--config", str(config)], env=ENV)
    if result.exit_code == 0:
        # A command with nothing to write (no new entries, nobody to send to) may succeed.
        assert args[0] in ("digest",), result.output
    else:
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "read-only" in result.output
        assert "db.sqlite" in result.output
    assert database.read_bytes() == before
    with Store(db_url(tmp_path)) as store:
        assert store.count_entries() == 30


def test_store_error_names_the_cause_for_each_fault() -> None:
    from newsletter.store.faults import _fault_cause

    assert "corrupt" in _fault_cause("database disk image is malformed")
    assert "read-only" in _fault_cause("attempt to write a readonly database")
    assert "full" in _fault_cause("database or disk is full")
    assert "lock" in _fault_cause("database is locked")
