"""What the web pages say about when a digest arrives: the truth for each digest.

A digest sent at each subscriber's local hour (``local_hour``) "arrives at 7:00 in your
time zone"; one sent on its cron schedule is "sent at 07:00 Europe/Paris" (the digest's
own time zone, whatever the subscriber's), with the days when the schedule names them.
"""

from __future__ import annotations

from newsletter.config import DigestConfig

_DAYS = {
    "0": "Sundays",
    "1": "Mondays",
    "2": "Tuesdays",
    "3": "Wednesdays",
    "4": "Thursdays",
    "5": "Fridays",
    "6": "Saturdays",
    "7": "Sundays",
    "sun": "Sundays",
    "mon": "Mondays",
    "tue": "Tuesdays",
    "wed": "Wednesdays",
    "thu": "Thursdays",
    "fri": "Fridays",
    "sat": "Saturdays",
}


def uses_local_hour(cfg: DigestConfig) -> bool:
    return cfg.local_hour is not None


def schedule_hint(cfg: DigestConfig) -> str:
    """When ``cfg`` is sent, in words a subscriber can check against their clock."""
    if cfg.local_hour is not None:
        return f"arrives at {cfg.local_hour}:00 in your time zone"
    minute, hour, day, month, weekday = cfg.schedule.split()
    if not (minute.isdigit() and hour.isdigit()):
        return f"sent on the schedule {cfg.schedule} ({cfg.timezone})"
    when = f"sent at {int(hour):02d}:{int(minute):02d} {cfg.timezone}"
    if day == "*" and month == "*" and weekday != "*":
        days = [_DAYS.get(d.lower()) for d in weekday.split(",")]
        if all(days):
            return f"{when}, on {', '.join(d for d in days if d)}"
        return f"{when} (days: {weekday})"
    if day != "*" or month != "*":
        return f"{when} (schedule {cfg.schedule})"
    return when


__all__ = ["schedule_hint", "uses_local_hour"]
