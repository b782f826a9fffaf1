"""The daemon on a database written before the package was laid out in stages: its stored
jobs name functions that no longer exist (``newsletter.daemon:job_digest``)."""

from __future__ import annotations

import asyncio
import logging
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger

from newsletter.config import settings_from_dict
from newsletter.deliver.mailers import MemoryMailer
from newsletter.serve.daemon import Daemon
from newsletter.serve.jobs import JOBSTORE_TABLE
from newsletter.store.database import Store

MISSED = datetime(2030, 6, 3, 7, 0, tzinfo=UTC)


def old_job_row(store: Store, job_id: str, func: str, next_run: datetime) -> None:
    """A row as APScheduler's SQLAlchemyJobStore writes it (the pickled ``Job`` state),
    naming a function by a module path that no longer exists."""
    state = {
        "version": 1,
        "id": job_id,
        "func": func,
        "trigger": CronTrigger(hour=7, minute=0, timezone=UTC),
        "executor": "default",
        "args": ("daily",),
        "kwargs": {},
        "name": job_id,
        "misfire_grace_time": 3600,
        "coalesce": True,
        "max_instances": 1,
        "next_run_time": next_run,
    }
    table = sa.Table(
        JOBSTORE_TABLE,
        sa.MetaData(),
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25), index=True),
        sa.Column("job_state", sa.LargeBinary, nullable=False),
    )
    with store.engine.begin() as conn:
        table.create(conn, checkfirst=True)
        conn.execute(
            table.insert().values(
                id=job_id, next_run_time=next_run.timestamp(), job_state=pickle.dumps(state)
            )
        )


def test_a_job_stored_by_an_earlier_release_is_still_caught_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "newsletter")
    caplog.set_level(logging.INFO, "apscheduler")
    settings = settings_from_dict(
        {
            "database_url": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "digests": [
                {"name": "daily", "title": "Daily", "schedule": "0 7 * * *", "grace": "3h"}
            ],
            "mail": {"delivery": "file", "mail_dir": str(tmp_path / "mail")},
        },
        env={},
    )
    with Store(settings.resolved_database_url()) as store:
        old_job_row(store, "digest:daily", "newsletter.daemon:job_digest", MISSED)
        old_job_row(store, "digest:gone", "newsletter.daemon:job_digest", MISSED)
        daemon = Daemon(
            settings,
            store,
            MemoryMailer(),
            "test-secret",
            clock=lambda: MISSED + timedelta(hours=1),
        )

        async def main() -> None:
            tasks = await daemon.start()
            if tasks:
                await asyncio.wait(tasks, timeout=20)
            await daemon.stop()

        asyncio.run(main())
        with store.engine.connect() as conn:
            ids = sorted(r[0] for r in conn.execute(sa.text(f"SELECT id FROM {JOBSTORE_TABLE}")))
    # The missed 07:00 edition was planned from the old row, never unpickled.
    assert "event=catch_up digest=daily edition=2030-06-03" in caplog.text
    assert "Unable to restore job" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # The digest that is no longer configured is dropped with a notice; the rest is new.
    assert "event=job_removed job=digest:gone" in caplog.text
    assert ids == ["digest:daily"]  # the outbox job lives in memory
