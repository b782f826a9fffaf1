"""APScheduler triggers of the daemon (kept in its persistent job store, so picklable)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from newsletter.serve.schedule import DigestSchedule, next_fire


class WallClockTrigger(BaseTrigger):  # type: ignore[misc]  # untyped base
    """An APScheduler trigger firing on a cron expression read as wall-clock time in an
    IANA zone, with the DST rules of ``newsletter.schedule`` (no skipped or doubled
    run). Picklable, for the persistent job store."""

    __slots__ = ("cron", "name", "timezone")

    def __init__(self, name: str, cron: str, timezone: str) -> None:
        self.name = name
        self.cron = cron
        self.timezone = timezone

    @property
    def schedule(self) -> DigestSchedule:
        return DigestSchedule(self.name, self.cron, self.timezone)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = previous_fire_time or (now - timedelta(microseconds=1))
        return next_fire(self.schedule, max(after, now - timedelta(microseconds=1)))

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "name": self.name, "cron": self.cron, "timezone": self.timezone}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.name = state["name"]
        self.cron = state["cron"]
        self.timezone = state["timezone"]

    def __str__(self) -> str:
        return f"wallclock[{self.cron} {self.timezone}]"

    def __repr__(self) -> str:
        return f"WallClockTrigger({self.name!r}, {self.cron!r}, {self.timezone!r})"


__all__ = ["WallClockTrigger"]
