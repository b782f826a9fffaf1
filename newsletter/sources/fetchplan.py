"""What ``newsletter fetch`` needs from the configuration, remembered between runs.

Validating the configuration loads pydantic and builds its models: a tenth of a second or
more, a fifth of a warm fetch (one where every feed answers 304). ``FetchPlan`` is the
part of the validated settings a fetch uses: its sources, its limits, the database URL.
Once a configuration has been validated, its plan is kept in the user's cache folder
with a key made of everything validation depends on: the file's path and bytes, the
``NEWSLETTER_*``, ``XDG_*`` and ``HOME`` environment variables, and newsletter's version
and configuration code. The next fetch with the same key reads the plan and never loads
pydantic; any change to any of those validates afresh, and reports errors as always.
It is a memo of ``plan_from_settings(load_config(path))``, nothing more: a missing,
unreadable or corrupt cache file only means validating again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsletter import __version__
from newsletter.models import Source
from newsletter.paths import cache_dir, default_config_path
from newsletter.sources.fetch import FetchSettings

if TYPE_CHECKING:
    from newsletter.config import Settings

FORMAT = 1
"""Bumped when the cached layout changes (the key includes it)."""


@dataclass(frozen=True)
class FetchPlan:
    """The settings a fetch run uses, validated."""

    path: str | None
    """The config file they came from (for messages)."""
    database_url: str
    fetch: FetchSettings
    sources: tuple[Source, ...]


def plan_from_settings(settings: Settings) -> FetchPlan:
    """The fetch plan of validated settings."""
    from newsletter.services.ingest import fetch_settings, source_from_config

    return FetchPlan(
        path=settings.path,
        database_url=settings.resolved_database_url(),
        fetch=fetch_settings(settings),
        sources=tuple(source_from_config(s) for s in settings.sources),
    )


def load_fetch_plan(path: Path | None) -> FetchPlan:
    """The fetch plan of the config at ``path`` (as ``load_config`` finds it when None):
    from the cache when its key matches, else validated (``ConfigError`` on a bad
    setting) and cached for next time."""
    config = path if path is not None else default_config_path()
    key = _key(config)
    cache = _cache_file(config) if key is not None else None
    if cache is not None and key is not None:
        plan = _read(cache, key)
        if plan is not None:
            return plan
    from newsletter.config import load_config

    plan = plan_from_settings(load_config(path))
    if cache is not None and key is not None:
        _write(cache, key, plan)
    return plan


def _key(config: Path) -> str | None:
    """Everything validation depends on, hashed; None when the file cannot be read (then
    ``load_config`` gives the error or the defaults)."""
    try:
        data = config.read_bytes()
        code = [_code_stamp(module) for module in _CODE]
    except OSError:
        return None
    env = sorted(
        (k, v)
        for k, v in os.environ.items()
        if k.startswith(("NEWSLETTER_", "XDG_")) or k == "HOME"
    )
    parts = {
        "format": FORMAT,
        "version": __version__,
        "code": code,
        "config": str(config.resolve()),
        "sha256": hashlib.sha256(data).hexdigest(),
        "env": env,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


_CODE = (
    "newsletter.config",
    "newsletter.sources.fetch",
    "newsletter.sources.fetchplan",
    "newsletter.services.ingest",
    "newsletter.models",
    "newsletter.paths",
)
"""The modules whose code decides what a plan holds: an edit to any of them (a new
default, a new check) makes every cached plan stale."""


def _code_stamp(module: str) -> tuple[str, int, int] | None:
    spec = find_spec(module)
    if spec is None or not spec.origin:
        return None
    stat = Path(spec.origin).stat()
    return (spec.origin, stat.st_mtime_ns, stat.st_size)


def _cache_file(config: Path) -> Path:
    """One file per config file: a changed config replaces its old plan."""
    name = hashlib.sha256(str(config.resolve()).encode()).hexdigest()[:32]
    return cache_dir() / "fetch-plans" / f"{name}.json"


def _read(cache: Path, key: str) -> FetchPlan | None:
    try:
        doc = json.loads(cache.read_bytes())
        if doc.get("key") != key:
            return None
        plan = doc["plan"]
        return FetchPlan(
            path=plan["path"],
            database_url=plan["database_url"],
            fetch=FetchSettings(**plan["fetch"]),
            sources=tuple(Source(**s) for s in plan["sources"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, corrupt or from another layout: validate again


def _write(cache: Path, key: str, plan: FetchPlan) -> None:
    doc: dict[str, Any] = {"key": key, "plan": asdict(plan)}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        tmp.replace(cache)  # atomic: a concurrent run reads the old plan or the new one
    except OSError:
        pass  # a read-only or full cache folder costs only speed
