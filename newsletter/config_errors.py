"""How a configuration error reads: the setting's dotted name, its line in the TOML
file, a valid example, and the checks across sections (names used twice, a digest naming
an unknown source). ``newsletter.config`` raises them as ``ConfigError``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from newsletter.errors import ConfigError

if TYPE_CHECKING:
    from newsletter.config import Settings

EXAMPLES: dict[str, str] = {
    "schedule": 'schedule = "0 7 * * *"',
    "timezone": 'timezone = "Europe/Paris"',
    "since": 'since = "36h"',
    "trusted_proxies": 'trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]',
    "pending_max_age": 'pending_max_age = "3d"',
    "grace": 'grace = "3h"',
    "group_by": 'group_by = "auto"   # or "topic", "source", "none"',
    "kind": 'kind = "feed"   # or "auto", "hf-papers"',
    "url": 'url = "https://example.org/feed.xml"',
    "name": 'name = "arxiv-ai"',
    "delivery": 'delivery = "smtp"   # or "file"',
    "security": 'security = "starttls"   # or "tls", "none"',
    "patterns": 'patterns = ["\\\\bLLMs?\\\\b"]',
    "max_items": "max_items = 50",
    "weight": "weight = 1.5",
    "concurrency": "concurrency = 16",
    "timeout": "timeout = 20",
    "max_bytes": "max_bytes = 10000000",
    "max_redirects": "max_redirects = 5",
    "port": "port = 587",
}


def dotted_name(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def check_references(settings: Settings, text: str | None) -> None:
    names = [s.name for s in settings.sources]
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise ConfigError(
                f"the source name {n!r} is used twice",
                path=settings.path,
                line=find_line(text, ("sources", i, "name")) if text else None,
                setting=f"sources[{i}].name",
                example='name = "arxiv-ai"',
            )
        seen.add(n)
    digest_names: set[str] = set()
    for i, d in enumerate(settings.digests):
        if d.name in digest_names:
            raise ConfigError(
                f"the digest name {d.name!r} is used twice",
                path=settings.path,
                line=find_line(text, ("digests", i, "name")) if text else None,
                setting=f"digests[{i}].name",
            )
        digest_names.add(d.name)
        for s in d.sources:
            if s not in seen:
                raise ConfigError(
                    f"names an unknown source {s!r} (known: {', '.join(names) or 'none'})",
                    path=settings.path,
                    line=find_line(text, ("digests", i, "sources")) if text else None,
                    setting=f"digests[{i}].sources",
                    example=f'sources = ["{names[0]}"]' if names else None,
                )


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")


def find_line(text: str | None, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number of the setting at ``loc`` (pydantic's error location).

    Walks the TOML text tracking the current table (``[a.b]``) and array-of-tables index
    (``[[digests]]``), and returns the line of the innermost key that matches, else the
    line of the table itself. Inline tables and dotted keys fall back to the table line.
    """
    if not text:
        return None
    # The table path the error lives in, as header names with array indices.
    want: list[str | int] = [p for p in loc]
    counters: dict[str, int] = {}
    current: list[str | int] = []
    best: int | None = None
    best_depth = -1
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _HEADER.match(line)
        if m and not line.lstrip().startswith("#"):
            is_array = m.group(1) == "[["
            parts = [s.strip().strip('"') for s in m.group(2).split(".")]
            path: list[str | int] = []
            prefix = ""
            for i, part in enumerate(parts):
                prefix = f"{prefix}.{part}" if prefix else part
                path.append(part)
                last = i == len(parts) - 1
                if last and is_array:
                    counters[prefix + _idx_key(path[:-1])] = (
                        counters.get(prefix + _idx_key(path[:-1]), -1) + 1
                    )
                    path.append(counters[prefix + _idx_key(path[:-1])])
                elif not last and f"{prefix}{_idx_key(path[:-1])}" in counters:
                    path.append(counters[f"{prefix}{_idx_key(path[:-1])}"])
            current = path
            depth = _match_depth(current, want)
            if depth == len(current) and depth > best_depth:
                best, best_depth = lineno, depth
            continue
        k = _KEY.match(line)
        if k:
            key = k.group(1).strip("\"'")
            full = [*current, key]
            depth = _match_depth(full, want)
            if depth == len(full) and depth > best_depth:
                best, best_depth = lineno, depth
    return best


def _idx_key(path: list[str | int]) -> str:
    return "@" + ".".join(str(p) for p in path)


def _match_depth(have: list[str | int], want: list[str | int]) -> int:
    n = 0
    for a, b in zip(have, want, strict=False):
        if a != b:
            break
        n += 1
    return n
