"""The daemon's bounce job: the leader reads the bounce mailbox (a real dovecot) on its
schedule through the real APScheduler, and a mailbox it cannot read is a logged warning,
never a crash. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.deliver.mailers import MemoryMailer
from newsletter.serve.daemon import Daemon, DaemonOptions
from newsletter.store.database import Store
from newsletter.store.subscribers import get_subscriber
from tests.factories import SECRET, bounce_message, make_settings, send_for_bounces
from tests.imap_server import dovecot
from tests.pg import on_both_databases
from tests.serve.test_daemon_jobs import run_until_job_ran
from tests.support import Clock

database_url = on_both_databases()


def with_mailbox(tmp_path: Path, port: int, password: str) -> Settings:
    return make_settings(
        tmp_path,
        bounces={
            "imap_host": "127.0.0.1",
            "imap_port": port,
            "imap_security": "none",
            "imap_username": "bounces@example.org",
            "imap_password": password,
        },
    )


def daemon(settings: Settings, store: Store) -> Daemon:
    # The scheduler fires on real time: the mailbox job is placed at the daemon's "now".
    clock = Clock(datetime.now(UTC))
    return Daemon(
        settings, store, MemoryMailer(), SECRET, clock=clock, options=DaemonOptions(poll=False)
    )


def test_the_leader_reads_the_bounce_mailbox(tmp_path: Path, store: Store) -> None:
    [ada] = send_for_bounces(store, tmp_path, ["ada@example.org"])
    with dovecot(tmp_path / "imap") as imap:
        imap.deliver(bounce_message("dsn-hard", ada))
        d = daemon(with_mailbox(tmp_path, imap.port, imap.password), store)

        def bounced() -> bool:
            sub = get_subscriber(store, "ada@example.org")
            return sub is not None and sub.status == "bounced"

        asyncio.run(run_until_job_ran(d, "bounces", done=bounced))
        assert bounced()


def test_a_mailbox_that_cannot_be_read_is_a_warning(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with dovecot(tmp_path / "imap") as imap:
        d = daemon(with_mailbox(tmp_path, imap.port, "wrong password"), store)
        with caplog.at_level(logging.WARNING):
            asyncio.run(run_until_job_ran(d, "bounces"))
    assert "event=bounces_failed" in caplog.text
    assert "refused us" in caplog.text
