"""``newsletter db status`` and ``db upgrade``, and what the other commands do with a
database whose schema is older or newer than the code's."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from newsletter.cli import main
from newsletter.store import migrate, schema
from tests.factories import write_config

OLD = Path(__file__).resolve().parents[1] / "store" / "fixtures" / "main-0279f88.sqlite"
HEAD = schema.REVISION


def config(tmp_path: Path, db: Path) -> Path:
    """A config of the database ``db`` and one digest, nothing else."""
    return write_config(
        tmp_path,
        database_url=f"sqlite:///{db}",
        sources=None,
        digests=[{"name": "daily"}],
        mail=None,
        web=None,
    )


def old_config(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "old.sqlite"
    shutil.copyfile(OLD, db)
    return config(tmp_path, db), db


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def version(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.OperationalError:
            rows = []
    conn.close()
    return [r[0] for r in rows]


def test_db_status_then_upgrade(tmp_path: Path) -> None:
    cfg, db = old_config(tmp_path)
    status = run("db", "status", "--config", cfg)
    assert status.exit_code == 0, status.output
    assert f"database: sqlite:///{db}" in status.output
    assert "revision: none (unversioned: created before migrations)" in status.output
    assert f"expected: {HEAD}" in status.output and "newsletter db upgrade" in status.output
    assert run("db", "status", "--check", "--config", cfg).exit_code == 1
    assert version(db) == []  # status changes nothing

    upgraded = run("db", "upgrade", "--config", cfg)
    assert upgraded.exit_code == 0, upgraded.output
    assert (
        f"upgraded from none (unversioned: created before migrations) to {schema.REVISION}"
        in upgraded.output
    )
    assert version(db) == [HEAD]
    again = run("db", "upgrade", "--config", cfg)
    assert again.exit_code == 0 and f"already at revision {HEAD}" in again.output
    checked = run("db", "status", "--check", "--config", cfg)
    assert checked.exit_code == 0 and "up to date" in checked.output


def test_db_upgrade_creates_a_new_database_and_status_leaves_a_missing_one_alone(
    tmp_path: Path,
) -> None:
    db = tmp_path / "data" / "new.sqlite"
    cfg = config(tmp_path, db)
    status = run("db", "status", "--config", cfg)
    assert status.exit_code == 0 and "status:   empty" in status.output
    assert not db.parent.exists()
    created = run("db", "upgrade", "--config", cfg)
    assert created.exit_code == 0 and f"created at revision {HEAD}" in created.output
    assert version(db) == [HEAD]


def test_commands_upgrade_an_older_sqlite_database_by_themselves(tmp_path: Path) -> None:
    cfg, db = old_config(tmp_path)
    listed = run("subscribers", "list", "--config", cfg)
    assert listed.exit_code == 0, listed.output
    assert "bob@example.org" in listed.stdout
    assert version(db) == [HEAD]


def test_commands_refuse_an_older_database_they_do_not_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A database server is never upgraded by a normal command; SQLite stands in for one.
    monkeypatch.setattr(migrate, "auto_upgrades", lambda url: False)
    cfg, db = old_config(tmp_path)
    refused = run("subscribers", "list", "--config", cfg)
    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert refused.stderr.strip() == (
        f"error: the database sqlite:///{db} is at schema revision none (unversioned: created "
        f"before migrations), and this version of newsletter expects {HEAD}: back it up, then "
        "run `newsletter db upgrade` (with the same --config)"
    )
    assert version(db) == []
    assert run("db", "upgrade", "--config", cfg).exit_code == 0
    listed = run("subscribers", "list", "--config", cfg)
    assert listed.exit_code == 0 and "bob@example.org" in listed.stdout


def test_a_newer_database_is_refused_by_commands_and_by_db_upgrade(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    cfg = config(tmp_path, db)
    assert run("db", "upgrade", "--config", cfg).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffff'")
    conn.close()
    for args in (["subscribers", "list"], ["db", "upgrade"]):
        refused = run(*args, "--config", cfg)
        assert refused.exit_code == 1, args
        assert "schema revision ffff, newer than this version of newsletter" in refused.stderr
        assert f"expects {HEAD}" in refused.stderr
    status = run("db", "status", "--check", "--config", cfg)
    assert status.exit_code == 1 and "newer than this version" in status.output
    assert version(db) == ["ffff"]


def test_db_upgrade_in_a_real_process(tmp_path: Path) -> None:
    cfg, db = old_config(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "newsletter", "db", "upgrade", "--config", str(cfg)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert f"to {HEAD}" in done.stdout and version(db) == [HEAD]
