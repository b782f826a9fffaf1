"""Two real ``newsletter run`` daemons on one PostgreSQL database, on a minutely schedule,
by the wall clock (issue 12's proof; ``test_daemon_leader.py`` runs the same decisions
in-process on an injected clock).

The issue asks for five minutes. A schedule cannot be faster than a minute (a cron
expression has no seconds field, and the period of an edition is its minute), and five
real minutes would weigh on every ``make test``; so the test runs the two periods that
prove the point, about two real minutes: the first with both daemons alive (the leader
plans and sends it, the other does nothing), the leader then SIGKILLed, and the second
with the survivor leading and a restarted daemon following (two daemons alive again).
``--leader-retry 1s`` makes the survivor try for the lead every second, so it takes over
before the next minute, or catches the minute up within the digest's grace if the
machine is slow: either way the second period gets its edition. Each period gets one
edition and the subscriber one message, with no minute lost in the handover.
"""

from __future__ import annotations

import signal
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.store import outbox
from newsletter.store.database import Store
from tests.factories import digest_config, local_smtp, make_entry, seed, source_config, write_config
from tests.pg import database_url_for
from tests.smtp_server import SmtpSink
from tests.support import (
    HANG_GUARD,
    LoggedProcess,
    logged_process,
    newsletter_command,
    process_env,
    wait_until,
)

READER = "reader@example.org"
PERIOD_GUARD = 3 * HANG_GUARD
"""A hang guard for the next minute to come and its edition to arrive."""


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url_for(request, "postgres", tmp_path)


def editions(url: str) -> list[str]:
    with Store(url) as store:
        return sorted(e.period for e in store.editions("daily", limit=100))


def sent(url: str) -> int:
    """Messages recorded as sent, over every edition."""
    with Store(url) as store:
        return sum(outbox.counts(store, e.id)["sent"] for e in store.editions("daily"))


def add_stories(url: str, batch: int) -> None:
    """New entries, so the next period has something to send."""
    now = datetime.now(UTC)
    stories = [
        make_entry(f"b{batch}-{i}", source="feed", title=f"Story {batch}.{i}", now=now)
        for i in range(3)
    ]
    with Store(url) as store:
        seed(store, now=now, entries=stories)


def test_two_daemons_one_edition_per_minute_and_the_leader_killed(
    tmp_path: Path, pg_url: str, smtp_sink: SmtpSink
) -> None:
    cfg = write_config(
        tmp_path,
        database_url=pg_url,
        smtp=local_smtp(smtp_sink.port),
        sources=[source_config("feed", tmp_path / "feed.xml")],
        digests=[digest_config(schedule="* * * * *", timezone="UTC", grace="3h")],
    )
    with Store(pg_url) as store:
        seed(store, subscribers=[READER])
    add_stories(pg_url, 0)
    cmd = [*newsletter_command(), "run", "--config", str(cfg), "--no-poll"]
    cmd += ["--leader-retry", "1s"]
    env = process_env(NEWSLETTER_SECRET_KEY="leader-processes-secret")

    with ExitStack() as stack:

        def daemon() -> LoggedProcess:
            return stack.enter_context(logged_process(cmd, env=env, cwd=tmp_path))

        first = daemon()
        first.wait_for("event=started .*leader=yes")
        second = daemon()
        second.wait_for("event=started .*leader=no")

        # The first minute: both alive, the leader plans and sends. What comes in once
        # the edition is planned is for the next one.
        wait_until(lambda: editions(pg_url), message="no first edition", timeout=PERIOD_GUARD)
        add_stories(pg_url, 1)
        (period,) = editions(pg_url)
        wait_until(lambda: sent(pg_url) == 1, message="the first edition was not sent")
        first.proc.send_signal(signal.SIGKILL)
        assert first.finish() == -signal.SIGKILL

        # Its session is gone with it, and so is the lock: the other one takes over.
        second.wait_for("event=leader_elected")
        third = daemon()
        third.wait_for("event=started .*leader=no")

        # The next minute: the new leader sends; the daemon that joined does not.
        wait_until(lambda: sent(pg_url) == 2, message="no second edition", timeout=PERIOD_GUARD)
        for proc in (second, third):
            proc.proc.send_signal(signal.SIGTERM)
        assert [second.finish(), third.finish()] == [0, 0], second.stderr + third.stderr

    assert "event=leader_elected" not in third.stderr
    periods = editions(pg_url)
    # One edition per period, consecutive minutes: none lost in the handover.
    first_minute = datetime.strptime(period, "%Y-%m-%dT%H%M")
    assert periods == [period, f"{first_minute + timedelta(minutes=1):%Y-%m-%dT%H%M}"]
    messages = smtp_sink.recorder.for_rcpt(READER)
    assert len(messages) == 2  # one per period, never two
    ids = {m.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0] for m in messages}
    assert len(ids) == 2


@pytest.mark.parametrize(
    ("value", "says"),
    [("soon", "'soon' is not a duration like 36h"), ("0s", "--leader-retry: must be longer")],
)
def test_run_refuses_a_leader_retry_that_is_not_a_duration(
    runner: CliRunner, tmp_path: Path, value: str, says: str
) -> None:
    config = write_config(tmp_path, digests=[digest_config()])
    result = runner.invoke(main, ["run", "--config", str(config), "--leader-retry", value])
    assert result.exit_code == 2, result.output
    assert says in result.output
