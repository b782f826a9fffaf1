"""When things happen: pure scheduling decisions for ``newsletter run``.

No clock, no I/O and no configuration here: every function takes ``now`` (an aware
datetime) and plain values (``DigestSchedule``); the daemon (``newsletter.serve.daemon``)
builds those from the settings and wires these decisions into APScheduler.

Cron expressions are read as *wall-clock* times in the digest's IANA time zone, and each
wall-clock match becomes exactly one instant:

- on a spring-forward day a time in the gap (02:30 when clocks jump 02:00 -> 03:00) is
  sent at the same distance after the jump (03:30), once;
- on a fall-back day a time that occurs twice (01:30) is sent at its first occurrence only.

An edition is identified by its *period*: the local date of its scheduled time (plus the
local time when the schedule fires more than once a day). The store records one edition
per (digest, period), so even a duplicate trigger can never send an edition twice.

Catch-up after downtime: missed runs are coalesced into the most recent one, which is
sent if it is no later than the digest's *grace* period, and skipped (with a reason to
log) after it. A digest may also set a *deadline*: past it no message of that edition is
sent at all, even one left over from an interrupted run.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from newsletter.errors import ConfigError
from newsletter.models import Subscriber

MAX_CATCH_UP_SCAN = 10_000
"""Fire times examined when looking back over downtime (a minutely cron over a week)."""

DEFAULT_POLL_INTERVAL = timedelta(minutes=30)
DEFAULT_BACKOFF_CAP = timedelta(hours=12)

_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_SIMPLE = re.compile(r"^\d+$")

Action = Literal["send", "late", "expired", "coalesced"]


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """When one digest goes out.

    ``local_hour`` set: the digest is sent to each subscriber at that hour of *their*
    time zone (an hourly job picks them), and ``cron``/``timezone`` are not used for
    sending.
    """

    name: str
    cron: str = "0 7 * * *"
    timezone: str = "UTC"
    grace: timedelta = timedelta(hours=3)
    deadline: timedelta | None = None
    local_hour: int | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def daily(self) -> bool:
        """Whether the schedule fires at most once a day (then the period is a date)."""
        fields = self.cron.split()
        return (
            len(fields) == 5 and bool(_SIMPLE.match(fields[0])) and bool(_SIMPLE.match(fields[1]))
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about one scheduled time."""

    action: Action
    fire: datetime
    """The scheduled instant (aware UTC)."""
    period: str
    reason: str = ""

    @property
    def send(self) -> bool:
        return self.action == "send"


@dataclass(frozen=True, slots=True)
class CatchUp:
    """The plan after downtime: at most one edition to send, the rest skipped."""

    send: Decision | None = None
    skipped: tuple[Decision, ...] = ()


# -- cron on wall-clock time -------------------------------------------------------------


def _dow_values(item: str) -> set[int]:
    """Standard cron day-of-week (0 or 7 = Sunday) of one list item -> 0..6 Sunday-based."""
    body, _, step_text = item.partition("/")
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ValueError(f"bad step in {item!r}")

    def num(tok: str) -> int:
        tok = tok.strip().lower()
        if tok[:3] in _DOW_NAMES and not tok.isdigit():
            return _DOW_NAMES.index(tok[:3])
        n = int(tok)
        if not 0 <= n <= 7:
            raise ValueError(f"day of week {n} is out of range 0-7")
        return n

    if body == "*":
        lo, hi = 0, 6
    elif "-" in body:
        a, b = body.split("-", 1)
        lo, hi = num(a), num(b)
    else:
        lo = hi = num(body)
        if step_text:
            hi = 6
    return {v % 7 for v in range(lo, hi + 1, step)}


def _trigger(cron: str) -> CronTrigger:
    """A CronTrigger over wall-clock time (expressed as UTC, which has no DST).

    APScheduler numbers days of the week from Monday = 0 even in ``from_crontab``, so
    ``1-5`` would mean Tuesday to Saturday; the field is rewritten with day names to keep
    the crontab meaning (Monday to Friday).
    """
    fields = cron.split()
    if len(fields) != 5:
        raise ConfigError(
            "must be a cron expression of five fields", setting="schedule", example="0 7 * * *"
        )
    minute, hour, dom, month, dow = fields
    try:
        if dow != "*":
            days: set[int] = set()
            for item in dow.split(","):
                days |= _dow_values(item)
            dow = ",".join(_DOW_NAMES[d] for d in sorted(days))
        return CronTrigger(
            minute=minute, hour=hour, day=dom, month=month, day_of_week=dow, timezone=UTC
        )
    except ValueError as exc:
        raise ConfigError(
            f"{cron!r} is not a valid cron expression ({exc})",
            setting="schedule",
            example="0 7 * * *",
        ) from None


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The wall-clock reading of ``instant`` in ``zone``, as a naive-as-UTC datetime."""
    return instant.astimezone(zone).replace(tzinfo=UTC, fold=0)


def wall_to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in ``zone`` -> the instant (aware UTC).

    fold=0 picks the first occurrence of an ambiguous time and, for a time in a
    spring-forward gap, the offset before the jump (02:30 -> 03:30 new time).
    """
    local = datetime.combine(wall.date(), wall.time(), tzinfo=zone).replace(fold=0)
    return local.astimezone(UTC)


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")


def _walls(trigger: CronTrigger, start_wall: datetime) -> Iterator[datetime]:
    """Wall-clock matches of ``trigger`` from ``start_wall`` on, in order."""
    probe = start_wall
    while True:
        wall = trigger.get_next_fire_time(None, probe)
        if wall is None:
            return
        yield wall
        probe = wall + timedelta(minutes=1)


# An instant just after ``t`` can come from a wall time somewhat before t's wall-clock
# reading (the repeated hour of a fall-back day): scans start this much earlier.
_OVERLAP = timedelta(hours=3)


def next_fire(schedule: DigestSchedule, after: datetime) -> datetime:
    """The first scheduled instant strictly after ``after`` (aware UTC)."""
    _require_aware(after, "after")
    zone = schedule.zone
    walls = _walls(_trigger(schedule.cron), _wall(after, zone) - _OVERLAP)
    for _, wall in zip(range(MAX_CATCH_UP_SCAN), walls, strict=False):
        instant = wall_to_instant(wall, zone)
        if instant > after:
            return instant
    raise ConfigError(
        f"the schedule {schedule.cron!r} of {schedule.name} never fires", setting="schedule"
    )


def fire_times(schedule: DigestSchedule, start: datetime, end: datetime) -> list[datetime]:
    """Scheduled instants in ``(start, end]``, oldest first, each once (at most
    ``MAX_CATCH_UP_SCAN``: the newest are kept)."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    zone = schedule.zone
    stop = _wall(end, zone) + _OVERLAP
    found: set[datetime] = set()
    for wall in _walls(_trigger(schedule.cron), _wall(start, zone) - _OVERLAP):
        if wall > stop:
            break
        instant = wall_to_instant(wall, zone)
        if start < instant <= end:
            found.add(instant)
    return sorted(found)[-MAX_CATCH_UP_SCAN:]


def previous_fire(schedule: DigestSchedule, at: datetime) -> datetime | None:
    """The last scheduled instant at or before ``at`` (looking back up to a year)."""
    for back in (timedelta(days=1), timedelta(days=8), timedelta(days=32), timedelta(days=367)):
        fires = fire_times(schedule, at - back, at)
        if fires:
            return fires[-1]
    return None


def period_key(schedule: DigestSchedule, fire: datetime) -> str:
    """The edition key of a scheduled instant: its local date (``2026-03-08``), plus the
    local time (``2026-03-08T0730``) when the schedule fires more than once a day."""
    local = fire.astimezone(schedule.zone)
    if schedule.daily:
        return local.date().isoformat()
    return f"{local.date().isoformat()}T{local:%H%M}"


# -- catch-up and deadlines --------------------------------------------------------------


def decide(schedule: DigestSchedule, fire: datetime, now: datetime) -> Decision:
    """Send an edition scheduled at ``fire``, or skip it as too late?

    ``late``: more than ``grace`` after its time (a missed edition is not sent hours
    later as if it were fresh). ``expired``: past the ``deadline``.
    """
    _require_aware(now, "now")
    period = period_key(schedule, fire)
    lateness = now - fire
    if schedule.deadline is not None and lateness > schedule.deadline:
        return Decision(
            "expired",
            fire,
            period,
            f"past its deadline ({_human(schedule.deadline)} after {fire:%Y-%m-%d %H:%M} UTC)",
        )
    if lateness > schedule.grace:
        return Decision(
            "late",
            fire,
            period,
            f"missed by {_human(lateness)}, more than the grace period of {_human(schedule.grace)}",
        )
    return Decision("send", fire, period)


def plan_catch_up(
    schedule: DigestSchedule,
    *,
    missed_since: datetime | None,
    now: datetime,
    done: Collection[str] = (),
) -> CatchUp:
    """What to do about the runs scheduled while the daemon was down.

    ``missed_since`` is the next run time the daemon had planned before it stopped
    (from the job store; ``None`` on a first start: nothing was missed). Runs in
    ``[missed_since, now]`` whose period is not in ``done`` are coalesced: only the
    most recent can be sent (if within grace), the older ones are skipped.
    """
    if missed_since is None or missed_since > now:
        return CatchUp()
    # Anything older than the grace period and deadline can only be skipped: scanning a
    # long downtime of a frequent schedule run by run would take a while for nothing.
    horizon = max(schedule.grace, schedule.deadline or timedelta(0)) + timedelta(days=1)
    start = max(missed_since - timedelta(microseconds=1), now - horizon)
    fires = [f for f in fire_times(schedule, start, now) if period_key(schedule, f) not in done]
    if not fires:
        return CatchUp()
    latest = decide(schedule, fires[-1], now)
    older = tuple(
        Decision("coalesced", f, period_key(schedule, f), "a later run replaces it")
        for f in fires[:-1]
    )
    if latest.send:
        return CatchUp(send=latest, skipped=older)
    return CatchUp(skipped=(*older, latest))


# -- per-subscriber local time -----------------------------------------------------------


def subscriber_zone(name: str) -> ZoneInfo:
    """A subscriber's time zone; UTC when the stored name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_due(
    subscribers: Iterable[Subscriber],
    *,
    hour: int,
    now: datetime,
    grace: timedelta,
    done: Collection[tuple[str, int]] = (),
) -> dict[str, list[Subscriber]]:
    """Subscribers whose local hour has come today, by period (their local date): their
    own ``local_hour`` when they chose one, else ``hour`` (the digest's).

    A subscriber is due from ``hour`` local time until ``grace`` after it, once per local
    date: ``done`` holds the (period, subscriber id) pairs already handled. Using "has
    come" rather than "is now" means an hour skipped by a spring-forward jump, or by
    downtime shorter than ``grace``, still sends; a repeated fall-back hour sends once
    because the period is the same.
    """
    _require_aware(now, "now")
    if not 0 <= hour <= 23:
        raise ValueError("hour must be 0-23")
    due: dict[str, list[Subscriber]] = {}
    for sub in subscribers:
        zone = subscriber_zone(sub.timezone)
        local_date: date = now.astimezone(zone).date()
        own = sub.local_hour if sub.local_hour is not None and 0 <= sub.local_hour <= 23 else hour
        target = wall_to_instant(datetime.combine(local_date, time(own)), zone)
        if not timedelta(0) <= now - target <= grace:
            continue
        period = local_date.isoformat()
        if sub.id is not None and (period, sub.id) in done:
            continue
        due.setdefault(period, []).append(sub)
    return due


def next_local_hour(hour: int, zones: Iterable[str], now: datetime) -> datetime | None:
    """The next instant after ``now`` at which ``hour`` comes in one of ``zones`` (the
    subscribers' time zones); None without any zone."""
    _require_aware(now, "now")
    best: datetime | None = None
    for name in set(zones):
        zone = subscriber_zone(name)
        today = now.astimezone(zone).date()
        for day in (today, today + timedelta(days=1)):
            instant = wall_to_instant(datetime.combine(day, time(hour)), zone)
            if instant > now:
                best = instant if best is None else min(best, instant)
                break
    return best


def next_due(schedule: DigestSchedule, now: datetime, zones: Iterable[str] = ()) -> dict[str, str]:
    """When the digest is next due, for the log: ``local`` and ``utc`` readings. A
    local-hour digest is due at the hour in each subscriber's zone (``zones``): ``utc``
    is the first of them."""
    if schedule.local_hour is not None:
        at = next_local_hour(schedule.local_hour, zones, now)
        return {
            "local": f"{schedule.local_hour:02d}:00 in each subscriber's zone",
            "utc": f"{at:%Y-%m-%d %H:%M}Z" if at else "no subscribers yet",
        }
    at = next_fire(schedule, now)
    local = at.astimezone(schedule.zone)
    return {
        "local": f"{local:%Y-%m-%d %H:%M} {schedule.timezone}",
        "utc": f"{at:%Y-%m-%d %H:%M}Z",
    }


# -- polling back-off --------------------------------------------------------------------


def backoff(
    error_count: int, *, base: timedelta, cap: timedelta = DEFAULT_BACKOFF_CAP
) -> timedelta:
    """How long to leave a failing source alone: ``base`` after the first error,
    doubling with each further error, at most ``cap``; zero when it is healthy."""
    if error_count <= 0:
        return timedelta(0)
    factor: int = 2 ** min(error_count - 1, 30)
    return min(cap, base * factor)


def source_due(
    *,
    now: datetime,
    interval: timedelta,
    last_fetched: datetime | None,
    error_count: int = 0,
    retry_after: datetime | None = None,
    cap: timedelta = DEFAULT_BACKOFF_CAP,
) -> bool:
    """Whether a source should be fetched in this poll: never fetched; or its interval
    has passed (doubled per consecutive error, up to ``cap``) and any Retry-After the
    server asked for is over."""
    if retry_after is not None and retry_after > now:
        return False
    if last_fetched is None:
        return True
    wait = max(interval, backoff(error_count, base=interval, cap=cap))
    # A poll that runs a little early (timer jitter) must not skip a healthy source.
    return now - last_fetched >= wait - min(interval / 10, timedelta(minutes=1))


def due_sources(
    states: Mapping[str, Any], names: Iterable[str], *, now: datetime, interval: timedelta
) -> list[str]:
    """The names among ``names`` to fetch now, given their stored states (objects with
    ``last_fetched``, ``error_count``, ``retry_after``; a missing state means new)."""
    out = []
    for name in names:
        st = states.get(name)
        if st is None or source_due(
            now=now,
            interval=interval,
            last_fetched=st.last_fetched,
            error_count=st.error_count,
            retry_after=st.retry_after,
        ):
            out.append(name)
    return out


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0 and seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        h, rem = divmod(seconds, 3600)
        return f"{h}h{rem // 60:02d}m" if rem >= 60 else f"{h}h"
    if seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"


__all__ = [
    "CatchUp",
    "Decision",
    "DigestSchedule",
    "backoff",
    "decide",
    "due_sources",
    "fire_times",
    "local_due",
    "next_due",
    "next_fire",
    "next_local_hour",
    "period_key",
    "plan_catch_up",
    "previous_fire",
    "source_due",
    "wall_to_instant",
]
