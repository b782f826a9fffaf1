"""Scheduling decisions with an injected clock: time zones, DST, catch-up, local hours."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from newsletter.config import DigestConfig
from newsletter.errors import ConfigError
from newsletter.models import Subscriber
from newsletter.serve.daemon import schedule_for
from newsletter.serve.schedule import (
    DigestSchedule,
    backoff,
    decide,
    due_sources,
    fire_times,
    local_due,
    next_fire,
    period_key,
    plan_catch_up,
    previous_fire,
    source_due,
)

NY = "America/New_York"
PARIS = "Europe/Paris"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))  # type: ignore[misc]


def test_two_time_zones_fire_at_their_own_local_time() -> None:
    paris = DigestSchedule("eu", "0 7 * * *", PARIS)
    ny = DigestSchedule("us", "0 7 * * *", NY)
    now = utc(2026, 6, 1, 0, 0)
    assert next_fire(paris, now) == utc(2026, 6, 1, 5, 0)  # CEST, UTC+2
    assert next_fire(ny, now) == utc(2026, 6, 1, 11, 0)  # EDT, UTC-4
    assert period_key(paris, next_fire(paris, now)) == "2026-06-01"
    # In winter the same local time is another UTC time.
    winter = utc(2026, 1, 10, 0, 0)
    assert next_fire(paris, winter) == utc(2026, 1, 10, 6, 0)
    assert next_fire(ny, winter) == utc(2026, 1, 10, 12, 0)


def test_period_is_the_local_date_not_the_utc_date() -> None:
    tokyo = DigestSchedule("jp", "30 6 * * *", "Asia/Tokyo")
    fire = next_fire(tokyo, utc(2026, 6, 1, 12, 0))
    assert fire == utc(2026, 6, 1, 21, 30)  # 06:30 on June 2nd in Tokyo
    assert period_key(tokyo, fire) == "2026-06-02"


def test_weekday_numbers_keep_their_crontab_meaning() -> None:
    weekdays = DigestSchedule("wd", "0 7 * * 1-5", PARIS)
    fires = fire_times(weekdays, utc(2026, 6, 6, 12), utc(2026, 6, 14, 12))  # Sat to Sun
    assert [f.astimezone(ZoneInfo(PARIS)).strftime("%a") for f in fires] == [
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
    ]
    sunday = DigestSchedule("sun", "0 7 * * 0", PARIS)
    assert next_fire(sunday, utc(2026, 6, 1)).astimezone(ZoneInfo(PARIS)).strftime("%a") == "Sun"


@pytest.mark.parametrize(
    ("cron", "zone", "day", "expected_local"),
    [
        ("0 7 * * *", NY, (2026, 3, 8), "07:00"),
        ("30 2 * * *", NY, (2026, 3, 8), "03:30"),  # 02:30 does not exist that day
        ("0 2 * * *", PARIS, (2026, 3, 29), "03:00"),
        ("0 7 * * *", NY, (2026, 11, 1), "07:00"),
        ("30 1 * * *", NY, (2026, 11, 1), "01:30"),  # 01:30 happens twice that day
        ("30 2 * * *", PARIS, (2026, 10, 25), "02:30"),
    ],
    ids=[
        "ny-spring-7am",
        "ny-spring-gap",
        "paris-spring-gap",
        "ny-fall-7am",
        "ny-fall-overlap",
        "paris-fall-overlap",
    ],
)
def test_dst_days_neither_skip_nor_double(
    cron: str, zone: str, day: tuple[int, int, int], expected_local: str
) -> None:
    sched = DigestSchedule("d", cron, zone)
    start = local(zone, *day) - timedelta(days=2)
    fires = fire_times(sched, start.astimezone(UTC), (start + timedelta(days=5)).astimezone(UTC))
    periods = [period_key(sched, f) for f in fires]
    # One edition per local day, every day, the DST day included.
    assert len(periods) == len(set(periods)) == 5
    on_day = [f for f, p in zip(fires, periods, strict=True) if p == date(*day).isoformat()]
    assert len(on_day) == 1
    assert on_day[0].astimezone(ZoneInfo(zone)).strftime("%H:%M") == expected_local


def test_fall_back_overlap_fires_at_first_occurrence_only() -> None:
    sched = DigestSchedule("d", "30 1 * * *", NY)
    first = utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert next_fire(sched, utc(2026, 11, 1, 0)) == first
    # Just after it, during the repeated hour, the next run is tomorrow.
    assert next_fire(sched, first) == utc(2026, 11, 2, 6, 30)
    assert next_fire(sched, utc(2026, 11, 1, 6, 0)) == utc(2026, 11, 2, 6, 30)


def test_hourly_schedule_on_dst_days_has_no_duplicate_periods() -> None:
    sched = DigestSchedule("h", "0 * * * *", NY)
    for day in ((2026, 3, 8), (2026, 11, 1)):
        start = local(NY, *day).astimezone(UTC)
        end = (local(NY, *day) + timedelta(days=1)).astimezone(UTC) - timedelta(seconds=1)
        fires = fire_times(sched, start - timedelta(seconds=1), end)
        periods = [period_key(sched, f) for f in fires]
        assert len(periods) == len(set(periods))
        assert fires == sorted(set(fires))
        # The clocks show 23 (spring) or 24 (fall: the repeated hour is sent once) hours.
        assert len(fires) in (23, 24)


def test_previous_fire() -> None:
    sched = DigestSchedule("d", "0 7 * * *", PARIS)
    assert previous_fire(sched, utc(2026, 6, 1, 5, 0)) == utc(2026, 6, 1, 5, 0)
    assert previous_fire(sched, utc(2026, 6, 1, 4, 59)) == utc(2026, 5, 31, 5, 0)
    monthly = DigestSchedule("m", "0 7 1 * *", PARIS)
    assert previous_fire(monthly, utc(2026, 6, 20)) == utc(2026, 6, 1, 5, 0)


def test_decide_grace_and_deadline() -> None:
    sched = DigestSchedule(
        "d", "0 7 * * *", PARIS, grace=timedelta(hours=3), deadline=timedelta(hours=6)
    )
    fire = utc(2026, 6, 1, 5, 0)
    assert decide(sched, fire, fire).send
    assert decide(sched, fire, fire + timedelta(hours=3)).send
    late = decide(sched, fire, fire + timedelta(hours=3, minutes=1))
    assert late.action == "late" and "grace" in late.reason
    assert decide(sched, fire, fire + timedelta(hours=7)).action == "expired"
    assert late.period == "2026-06-01"


def test_catch_up_inside_grace_sends_once_coalesced() -> None:
    sched = DigestSchedule("d", "0 7 * * *", PARIS, grace=timedelta(hours=3))
    # Down from before Monday's run until Wednesday 08:30 (2 runs missed, 1 in grace).
    plan = plan_catch_up(sched, missed_since=utc(2026, 6, 1, 5, 0), now=utc(2026, 6, 3, 6, 30))
    assert plan.send is not None
    assert plan.send.period == "2026-06-03"
    # Older missed runs are folded into the one sent (those within a day are listed).
    assert [d.period for d in plan.skipped][-1:] == ["2026-06-02"]
    assert {d.action for d in plan.skipped} == {"coalesced"}


def test_catch_up_outside_grace_skips_with_reason() -> None:
    sched = DigestSchedule("d", "0 7 * * *", PARIS, grace=timedelta(hours=3))
    plan = plan_catch_up(sched, missed_since=utc(2026, 6, 1, 5, 0), now=utc(2026, 6, 1, 9, 0))
    assert plan.send is None
    assert [(d.period, d.action) for d in plan.skipped] == [("2026-06-01", "late")]
    assert "grace period of 3h" in plan.skipped[0].reason


def test_catch_up_nothing_missed_or_already_sent() -> None:
    sched = DigestSchedule("d", "0 7 * * *", PARIS)
    now = utc(2026, 6, 1, 6, 0)
    assert plan_catch_up(sched, missed_since=None, now=now).send is None  # first start
    assert plan_catch_up(sched, missed_since=utc(2026, 6, 2, 5), now=now).send is None
    done = plan_catch_up(sched, missed_since=utc(2026, 6, 1, 5), now=now, done={"2026-06-01"})
    assert done.send is None and not done.skipped


def test_catch_up_after_long_downtime_is_fast_and_bounded() -> None:
    sched = DigestSchedule("d", "* * * * *", "UTC", grace=timedelta(minutes=5))
    plan = plan_catch_up(sched, missed_since=utc(2025, 1, 1), now=utc(2026, 6, 1, 12, 0))
    assert plan.send is not None and plan.send.fire == utc(2026, 6, 1, 12, 0)
    assert len(plan.skipped) <= 24 * 60 * 2


def subscriber(id_: int, tz: str) -> Subscriber:
    return Subscriber(email=f"s{id_}@example.org", id=id_, timezone=tz)


def test_local_hour_picks_subscribers_whose_morning_came() -> None:
    subs = [
        subscriber(1, PARIS),
        subscriber(2, NY),
        subscriber(3, "Asia/Kolkata"),
        subscriber(4, "Not/AZone"),
    ]
    grace = timedelta(hours=1)
    due = local_due(subs, hour=7, now=utc(2026, 6, 1, 5, 0), grace=grace)
    assert {p: [s.id for s in v] for p, v in due.items()} == {"2026-06-01": [1]}
    due = local_due(subs, hour=7, now=utc(2026, 6, 1, 2, 0), grace=grace)  # 07:30 in India
    assert {p: [s.id for s in v] for p, v in due.items()} == {"2026-06-01": [3]}
    due = local_due(subs, hour=7, now=utc(2026, 6, 1, 7, 0), grace=grace)  # unknown zone: UTC
    assert {p: [s.id for s in v] for p, v in due.items()} == {"2026-06-01": [4]}
    done = local_due(subs, hour=7, now=utc(2026, 6, 1, 5, 0), grace=grace, done={("2026-06-01", 1)})
    assert done == {}


@pytest.mark.parametrize(
    ("hour", "day"),
    [(2, (2026, 3, 8)), (7, (2026, 3, 8)), (1, (2026, 11, 1)), (7, (2026, 11, 1))],
    ids=["spring-missing-hour", "spring-7am", "fall-repeated-hour", "fall-7am"],
)
def test_hourly_local_job_over_dst_days_sends_exactly_once(
    hour: int, day: tuple[int, int, int]
) -> None:
    subs = [subscriber(1, NY), subscriber(2, PARIS)]
    sent: list[tuple[str, int]] = []
    t = local(NY, *day).astimezone(UTC) - timedelta(days=1)
    end = t + timedelta(days=3)
    while t <= end:  # the hourly job, at minute 0 UTC
        for period, due in local_due(
            subs, hour=hour, now=t, grace=timedelta(hours=3), done=set(sent)
        ).items():
            sent.extend((period, s.id) for s in due if s.id is not None)
        t += timedelta(hours=1)
    for sid in (1, 2):
        periods = [p for p, s in sent if s == sid]
        assert len(periods) == len(set(periods)), "an edition was sent twice"
    ny_days = sorted(p for p, s in sent if s == 1)
    assert date(*day).isoformat() in ny_days, "the DST day was skipped"


def test_backoff_doubles_and_caps() -> None:
    base = timedelta(minutes=30)
    assert backoff(0, base=base) == timedelta(0)
    assert backoff(1, base=base) == base
    assert backoff(3, base=base) == base * 4
    assert backoff(40, base=base, cap=timedelta(hours=12)) == timedelta(hours=12)


def test_source_due_follows_interval_backoff_and_retry_after() -> None:
    now = utc(2026, 6, 1, 12)
    iv = timedelta(minutes=30)
    assert source_due(now=now, interval=iv, last_fetched=None)
    assert not source_due(now=now, interval=iv, last_fetched=now - timedelta(minutes=10))
    assert source_due(now=now, interval=iv, last_fetched=now - timedelta(minutes=30))
    # Three errors in a row: wait 2h (30m doubled twice).
    assert not source_due(
        now=now, interval=iv, last_fetched=now - timedelta(hours=1), error_count=3
    )
    assert source_due(now=now, interval=iv, last_fetched=now - timedelta(hours=2), error_count=3)
    assert not source_due(
        now=now, interval=iv, last_fetched=None, retry_after=now + timedelta(minutes=1)
    )

    class State:
        def __init__(self, last: datetime | None, errors: int) -> None:
            self.last_fetched, self.error_count, self.retry_after = last, errors, None

    states = {"ok": State(now - timedelta(hours=1), 0), "bad": State(now - timedelta(hours=1), 5)}
    assert due_sources(states, ["ok", "bad", "new"], now=now, interval=iv) == ["ok", "new"]


def test_schedule_for_config_and_bad_cron() -> None:
    cfg = DigestConfig(name="daily", schedule="0 7 * * 1-5", timezone=PARIS, grace="2h")
    sched = schedule_for(cfg)
    assert sched.grace == timedelta(hours=2) and sched.deadline is None
    assert sched.daily
    assert not DigestSchedule("h", "*/15 * * * *").daily
    assert period_key(DigestSchedule("h", "*/15 7 * * *"), utc(2026, 6, 1, 7, 15)) == (
        "2026-06-01T0715"
    )
    with pytest.raises(ConfigError):
        next_fire(DigestSchedule("x", "0 7 * *"), utc(2026, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        next_fire(sched, datetime(2026, 1, 1))


def test_the_scheduling_decisions_take_plain_values() -> None:
    # No configuration models (pydantic) behind the decisions: the daemon converts.
    code = (
        "import sys, newsletter.serve.schedule; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic' "
        "or m == 'newsletter.config'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_subscriber_who_chose_an_hour_gets_it_instead_of_the_digests() -> None:
    early = Subscriber(email="early@example.org", id=1, timezone=PARIS, local_hour=6)
    usual = subscriber(2, PARIS)
    grace = timedelta(minutes=30)
    # 06:10 in Paris: only the one who chose 06:00.
    due = local_due([early, usual], hour=7, now=utc(2026, 6, 1, 4, 10), grace=grace)
    assert {p: [s.id for s in v] for p, v in due.items()} == {"2026-06-01": [1]}
    # 07:10 in Paris: only the digest's own hour.
    due = local_due([early, usual], hour=7, now=utc(2026, 6, 1, 5, 10), grace=grace)
    assert {p: [s.id for s in v] for p, v in due.items()} == {"2026-06-01": [2]}
