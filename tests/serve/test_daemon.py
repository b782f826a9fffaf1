"""The scheduler daemon: persistent jobs without duplicates, catch-up after downtime,
per-subscriber local hours, polling, graceful stop (in process and with SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from newsletter.config import Settings, settings_from_dict
from newsletter.deliver.mailers import MemoryMailer, Outgoing
from newsletter.models import Entry, Subscriber
from newsletter.serve.daemon import Daemon, DaemonOptions
from newsletter.serve.jobs import JOBSTORE_TABLE
from newsletter.serve.schedule import DigestSchedule
from newsletter.serve.triggers import WallClockTrigger
from newsletter.store import outbox
from newsletter.store.database import Store
from newsletter.store.subscribers import save_subscriber

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "tests" / "fixtures" / "feeds" / "atom-handmade.xml"


class Clock:
    """A settable clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def recording_mailer(delay: float = 0.0) -> MemoryMailer:
    """Keeps every message; ``delay`` makes each send take that long."""

    async def slow(message: Outgoing) -> None:
        await asyncio.sleep(delay)

    return MemoryMailer(slow if delay else None)


def make_settings(tmp_path: Path, **digest: Any) -> Settings:
    return settings_from_dict(
        {
            "database_url": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "sources": [{"name": "feed", "url": str(FEED)}],
            "digests": [
                {
                    "name": "daily",
                    "title": "Daily",
                    "schedule": "0 7 * * *",
                    "timezone": "Europe/Paris",
                    "grace": "3h",
                    **digest,
                }
            ],
            "mail": {"delivery": "file", "mail_dir": str(tmp_path / "mail")},
        },
        env={},
    )


def seed(store: Store, now: datetime, n: int = 3) -> None:
    store.add_entries(
        [
            Entry(
                id=f"e{i}",
                source="feed",
                title=f"Story {i}",
                link=f"https://example.org/{i}",
                published=now - timedelta(hours=i + 1),
                text="Some text.",
            )
            for i in range(n)
        ],
        now=now,
    )


def subscribe(store: Store, email: str, now: datetime, tz: str = "UTC") -> Subscriber:
    return save_subscriber(store, Subscriber(email=email, timezone=tz), now=now)


def make_daemon(
    settings: Settings,
    store: Store,
    clock: Callable[[], datetime],
    mailer: Any = None,
    **options: Any,
) -> Daemon:
    return Daemon(
        settings,
        store,
        mailer or recording_mailer(),
        "test-secret",
        clock=clock,
        options=DaemonOptions(**options),
    )


def job_rows(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(sa.text(f"SELECT id FROM {JOBSTORE_TABLE}")))


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield s
    s.close()


async def restart(daemon: Daemon) -> list[asyncio.Task[Any]]:
    tasks = await daemon.start()
    if tasks:
        await asyncio.wait(tasks, timeout=20)
    await daemon.stop()
    return tasks


def test_restart_never_duplicates_jobs(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path)
    clock = Clock(datetime(2030, 6, 1, 4, 0, tzinfo=UTC))

    async def main() -> None:
        for _ in range(3):
            await restart(make_daemon(settings, store, clock))

    asyncio.run(main())
    assert job_rows(store) == ["digest:daily", "outbox", "poll"]
    # A digest removed from the config takes its job with it.
    other = settings.model_copy(update={"digests": ()})
    asyncio.run(restart(make_daemon(other, store, clock)))
    assert job_rows(store) == ["poll"]


def test_jobs_have_explicit_ids_and_next_runs_in_the_digest_zone(
    tmp_path: Path, store: Store
) -> None:
    settings = make_settings(tmp_path)
    clock = Clock(datetime(2030, 6, 1, 4, 0, tzinfo=UTC))

    async def main() -> dict[str, datetime | None]:
        daemon = make_daemon(settings, store, clock)
        await daemon.start()
        jobs = dict(daemon.jobs())
        await daemon.stop()
        return jobs

    jobs = asyncio.run(main())
    assert jobs["digest:daily"] == datetime(2030, 6, 1, 5, 0, tzinfo=UTC)  # 07:00 CEST


def run_downtime(
    tmp_path: Path, store: Store, *, stopped_at: datetime, restarted_at: datetime
) -> tuple[MemoryMailer, list[asyncio.Task[Any]]]:
    settings = make_settings(tmp_path)
    clock = Clock(stopped_at)
    asyncio.run(restart(make_daemon(settings, store, clock)))
    seed(store, restarted_at - timedelta(hours=1))
    subscribe(store, "reader@example.org", stopped_at)
    clock.now = restarted_at
    mailer = recording_mailer()
    tasks = asyncio.run(restart(make_daemon(settings, store, clock, mailer)))
    return mailer, tasks


def test_restart_inside_grace_sends_the_missed_edition_once(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "newsletter")
    # Down at 06:00 Paris, back at 08:30 (07:00 missed by 1h30, grace 3h).
    mailer, tasks = run_downtime(
        tmp_path,
        store,
        stopped_at=datetime(2030, 6, 3, 4, 0, tzinfo=UTC),
        restarted_at=datetime(2030, 6, 3, 6, 30, tzinfo=UTC),
    )
    assert len(tasks) == 1
    assert [m.recipient for m in mailer.messages] == ["reader@example.org"]
    assert store.edition("daily", "2030-06-03") is not None
    assert "event=catch_up digest=daily edition=2030-06-03" in caplog.text
    assert "event=edition_sent digest=daily edition=2030-06-03" in caplog.text
    # Restarting again sends nothing more: the edition is done.
    settings = make_settings(tmp_path)
    again = recording_mailer()
    asyncio.run(
        restart(make_daemon(settings, store, Clock(datetime(2030, 6, 3, 7, 0, tzinfo=UTC)), again))
    )
    assert again.messages == []


def test_restart_outside_grace_skips_with_a_notice(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "newsletter")
    mailer, tasks = run_downtime(
        tmp_path,
        store,
        stopped_at=datetime(2030, 6, 3, 4, 0, tzinfo=UTC),
        restarted_at=datetime(2030, 6, 3, 9, 30, tzinfo=UTC),  # 4h30 late
    )
    assert tasks == [] and mailer.messages == []
    assert store.edition("daily", "2030-06-03") is None
    skipped = [r for r in caplog.records if "event=edition_skipped" in r.getMessage()]
    assert skipped and skipped[0].levelno == logging.WARNING
    assert "grace period of 3h" in skipped[0].getMessage()


def test_deadline_stops_a_late_send(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path)
    clock = Clock(datetime(2030, 6, 3, 7, 0, tzinfo=UTC))
    seed(store, clock.now)
    subscribe(store, "reader@example.org", clock.now)
    mailer = recording_mailer()
    daemon = make_daemon(settings, store, clock, mailer)
    daemon.overrides["daily"] = DigestSchedule(
        "daily",
        "0 7 * * *",
        "Europe/Paris",
        grace=timedelta(hours=6),
        deadline=timedelta(hours=1),
    )
    asyncio.run(daemon.send_digest("daily"))  # 07:00 Paris was 2h ago: past the deadline
    assert mailer.messages == []
    clock.now = datetime(2030, 6, 3, 5, 30, tzinfo=UTC)
    asyncio.run(daemon.send_digest("daily"))
    assert len(mailer.messages) == 1


def test_local_hour_job_sends_each_subscriber_in_their_morning(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "newsletter")
    settings = make_settings(tmp_path)
    start = datetime(2030, 6, 3, 0, 0, tzinfo=UTC)
    seed(store, start)
    subscribe(store, "paris@example.org", start, "Europe/Paris")
    subscribe(store, "ny@example.org", start, "America/New_York")
    clock = Clock(start)
    mailer = recording_mailer()
    daemon = make_daemon(settings, store, clock, mailer)
    daemon.overrides["daily"] = DigestSchedule(
        "daily", "0 7 * * *", "UTC", grace=timedelta(hours=2), local_hour=7
    )
    got: dict[str, datetime] = {}
    for hour in range(24):
        clock.now = start + timedelta(hours=hour)
        asyncio.run(daemon.send_local("daily"))
        for m in mailer.messages:
            got.setdefault(m.recipient, clock.now)
    assert got == {
        "paris@example.org": datetime(2030, 6, 3, 5, 0, tzinfo=UTC),
        "ny@example.org": datetime(2030, 6, 3, 11, 0, tzinfo=UTC),
    }
    assert len(mailer.messages) == 2  # hourly runs within the grace did not send again
    assert "local_hour=7" in caplog.text


def test_local_hour_digest_gets_an_hourly_job(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path)
    daemon = make_daemon(settings, store, Clock(datetime(2030, 6, 3, tzinfo=UTC)))
    daemon.overrides["daily"] = DigestSchedule("daily", local_hour=7)
    asyncio.run(restart(daemon))
    assert job_rows(store) == ["local:daily", "outbox", "poll"]


def test_poll_runs_in_the_real_scheduler_and_backs_off(tmp_path: Path, store: Store) -> None:
    settings = settings_from_dict(
        {
            "sources": [
                {"name": "feed", "url": str(FEED)},
                {"name": "broken", "url": str(tmp_path / "missing.xml")},
            ],
            "digests": [{"name": "daily"}],
        },
        env={},
    )

    async def main() -> None:
        daemon = make_daemon(settings, store, lambda: datetime.now(UTC))
        await daemon.start()
        for _ in range(200):
            states = store.source_states()
            if all(n in states and states[n].last_fetched for n in ("feed", "broken")):
                break
            await asyncio.sleep(0.05)
        await daemon.stop()

    asyncio.run(main())
    states = store.source_states()
    assert states["feed"].status == "ok" and store.count_entries() > 0
    assert states["broken"].error_count == 1
    # The next poll leaves the failing source alone until its back-off is over.
    daemon = make_daemon(settings, store, lambda: datetime.now(UTC))
    asyncio.run(daemon.poll())
    assert store.source_states()["broken"].error_count == 1


def test_stop_lets_a_send_in_flight_finish(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path)
    clock = Clock(datetime(2030, 6, 3, 5, 0, tzinfo=UTC))
    seed(store, clock.now)
    subscribe(store, "reader@example.org", clock.now)
    mailer = recording_mailer(delay=0.3)

    async def main() -> None:
        daemon = make_daemon(settings, store, clock, mailer, stop_timeout=5)
        await daemon.start()
        job = asyncio.ensure_future(daemon.tracked(daemon.send_digest("daily")))
        await asyncio.sleep(0.1)
        await daemon.stop()
        await job

    asyncio.run(main())
    assert len(mailer.messages) == 1
    edition = store.edition("daily", "2030-06-03")
    assert edition is not None and outbox.counts(store, edition.id)["sent"] == 1


def test_stop_abandons_a_stuck_send_safely(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path)
    clock = Clock(datetime(2030, 6, 3, 5, 0, tzinfo=UTC))
    seed(store, clock.now)
    subscribe(store, "reader@example.org", clock.now)
    mailer = recording_mailer(delay=30)

    async def main() -> None:
        daemon = make_daemon(settings, store, clock, mailer, stop_timeout=0.2)
        await daemon.start()
        job = asyncio.ensure_future(daemon.tracked(daemon.send_digest("daily")))
        await asyncio.sleep(0.1)
        await daemon.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await job

    asyncio.run(main())
    edition = store.edition("daily", "2030-06-03")
    assert edition is not None
    counts = outbox.counts(store, edition.id)
    # Handed back to the outbox (not lost, not marked sent): the next run sends it.
    assert counts["sent"] == 0 and counts["retry"] == 1


def test_wall_clock_trigger_survives_pickling() -> None:
    import pickle

    trigger = WallClockTrigger("daily", "30 2 * * *", "America/New_York")
    copy = pickle.loads(pickle.dumps(trigger))
    now = datetime(2026, 3, 7, 12, tzinfo=UTC)
    assert copy.get_next_fire_time(None, now) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert str(copy) == "wallclock[30 2 * * * America/New_York]"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_stops_run_cleanly_with_exit_0(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f"""database_url = "sqlite:///{tmp_path / "db.sqlite"}"
[[sources]]
name = "feed"
url = "{FEED}"
[[digests]]
name = "daily"
schedule = "0 7 * * *"
timezone = "Europe/Paris"
[mail]
delivery = "file"
mail_dir = "{tmp_path / "mail"}"
[web]
port = {port}
""",
        encoding="utf-8",
    )
    code = "from newsletter.cli import main\nmain()\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("NEWSLETTER_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "run", "--config", str(config), "--web"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        ok = False
        with httpx.Client(trust_env=False, timeout=1) as client:  # no proxy for 127.0.0.1
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    r = client.get(f"http://127.0.0.1:{port}/healthz")
                    ok = r.status_code == 200 and r.json() == {"status": "ok"}
                    if ok:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        assert ok, proc.stderr.read() if proc.poll() is not None and proc.stderr else "no answer"
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "event=started" in err
    assert "event=stopped" in err
    assert "Traceback" not in err
