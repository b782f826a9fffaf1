"""The ground of the settings: defaults as named constants, durations, name and
pattern checks, and the strict frozen base model every section derives from."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from newsletter import __version__

# Fetching (``[fetch]``): read by ``newsletter.sources.fetch`` from ``FetchConfig``.
DEFAULT_USER_AGENT = f"newsletter/{__version__} (+https://github.com/newsletter/newsletter)"
DEFAULT_CONCURRENCY = 16
DEFAULT_PER_HOST = 4
DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_MAX_REDIRECTS = 5

DEFAULT_MAX_ITEMS = 50
DEFAULT_MAX_CANDIDATES = 10_000
DEFAULT_MAX_CANDIDATES_PER_SOURCE = 2_000
DEFAULT_SUMMARY_CHARS = 280
DEFAULT_HALF_LIFE_HOURS = 24.0
DEFAULT_SCHEDULE = "0 7 * * *"
DEFAULT_GRACE = "3h"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError("must be a short name of letters, digits, '-', '_' or '.'")
    return v


def check_patterns(v: tuple[str, ...]) -> tuple[str, ...]:
    for p in v:
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"{p!r} is not a valid regular expression ({exc})") from exc
    return v


def parse_duration(value: str) -> timedelta:
    """``"36h"``, ``"7d"``, ``"90m"``, ``"2w"``, ``"30s"`` -> timedelta; ValueError otherwise."""
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a duration like 36h, 7d, 90m or 2w")
    return timedelta(seconds=float(m.group(1)) * _DURATION_UNITS[m.group(2).lower()])


def _at_least_a_minute(v: str) -> str:
    if parse_duration(v) < timedelta(minutes=1):
        raise ValueError("must be at least 1m")
    return v


PollInterval = Annotated[str, AfterValidator(_at_least_a_minute)]
"""A duration of at least a minute (``30m``): how often something is polled."""


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
