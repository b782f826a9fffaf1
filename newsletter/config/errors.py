"""How a configuration error reads: the setting's dotted name, its line in the TOML
file, a valid example, and the checks across sections (names used twice, a digest naming
an unknown source). ``newsletter.config`` raises them as ``ConfigError``."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
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
    "deadline": 'deadline = "12h"',
    "local_hour": "local_hour = 7",
    "subject": 'subject = "{title} — {headline}"',
    "highlights": "highlights = 3",
    "screens": "screens = 6",
    "sources": 'sources = ["arxiv-ai"]',
    "keywords": 'keywords = ["language model", "LLM"]',
    "min_items": "min_items = 3",
    "max_per_source": "max_per_source = 10",
    "include": 'include = ["LLM", "agents"]',
    "exclude": 'exclude = ["sponsored", "job posting"]',
    "include_patterns": 'include_patterns = ["\\\\bLLMs?\\\\b"]',
    "exclude_patterns": 'exclude_patterns = ["^Ask HN"]',
    "from_address": 'from_address = "Newsletter <news@example.org>"',
    "base_url": 'base_url = "https://news.example.org"',
    "database_url": 'database_url = "sqlite:///newsletter.sqlite"',
    "retry_delay": 'retry_delay = "5m"',
    "pool_size": "pool_size = 2",
    "logo_url": 'logo_url = "https://news.example.org/logo.png"',
    "unsubscribe_address": 'unsubscribe_address = "unsubscribe@example.org"',
    "enabled": "enabled = true",
    "max_sections": "max_sections = 8",
    "summary_chars": "summary_chars = 280",
    "per_host": "per_host = 4",
    "title": 'title = "Daily papers"',
}


def _model_at(root: Any, loc: tuple[Any, ...]) -> Any:
    """The pydantic model class that holds the setting at ``loc`` (None if unknown)."""
    model = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return None
        model = _inner_model(fields[part].annotation)
        if model is None:
            return None
    return model


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (tuple, list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def did_you_mean(root: Any, loc: tuple[Any, ...]) -> str | None:
    """The known setting closest to the unknown one at ``loc`` (difflib), if any is close."""
    model = _model_at(root, loc)
    if model is None or not loc or not isinstance(loc[-1], str):
        return None
    names = [n for n in model.model_fields if n != "path"]
    found = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
    return found[0] if found else None


_BARE_VALUE = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=\s*([^\"'\[{\s][^#]*?)\s*(#.*)?$")
_KEY_ONLY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*$")


def syntax_example(text: str, line: int | None) -> str:
    """A valid example for the TOML line that failed to parse: its own key and value,
    written as TOML wants them."""
    lines = text.splitlines()
    if line is None or not 1 <= line <= len(lines):
        return 'name = "value"   # strings in double quotes'
    bad = lines[line - 1]
    m = _BARE_VALUE.match(bad)
    if m:
        key, value = m.group(1), m.group(2).strip()
        return f"{key} = {_quote(value)}"
    m = _KEY_ONLY.match(bad)
    if m:
        return EXAMPLES.get(m.group(1)) or f'{m.group(1)} = "value"'
    if bad.strip().startswith("["):
        return "[mail]   # a table; [[digests]] starts each digest"
    key = bad.split("=", 1)[0].strip()
    return EXAMPLES.get(key) or f'{key or "name"} = "value"   # strings in double quotes'


def _quote(value: str) -> str:
    if re.fullmatch(r"-?\d+(\.\d+)?|true|false", value):
        return value
    return '"' + value.strip("\"'").replace('"', '\\"') + '"'


def config_problem(
    err: Any,
    root: Any,
    env_overrides: Mapping[str, str],
    *,
    path: str | None,
    text: str | None,
    env: Mapping[str, str],
) -> ConfigError:
    """One pydantic error as a ``ConfigError``: file, line, setting, example, and the
    closest known name for an unknown setting."""
    loc = tuple(err["loc"])
    setting = dotted_name(loc)
    leaf = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
    line = find_line(text, loc) if text else None
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    example = EXAMPLES.get(leaf)
    if err["type"] == "extra_forbidden":
        msg = "is not a known setting"
        close = did_you_mean(root, loc)
        if close:
            msg += f"; did you mean `{close}`?"
            example = EXAMPLES.get(close, example)
        else:
            msg += " (config/example.toml shows every setting)"
    elif err["type"] == "missing":
        msg = "is required"
    from_env = [v for v, d in env_overrides.items() if d == setting and v in env]
    if from_env:
        msg += f" (value from the environment variable {from_env[0]})"
    return ConfigError(msg, path=path, line=line, setting=setting, example=example)


def missing_config(path: Path, *, how: str) -> ConfigError:
    """The one error every command gives when it needs a config and finds none: where it
    looked, and how to make one. Nothing is created."""
    flag = "" if how == "the user config folder" else f" --config {path}"
    return ConfigError(
        f"no config file found (looked for {path}, from {how}); "
        f"create one with `newsletter init{flag}`"
    )


def dotted_name(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def check_references(settings: Settings, text: str | None) -> None:
    """Every cross-section mistake at once (``ConfigError.of``)."""
    problems = reference_errors(settings, text)
    if problems:
        raise ConfigError.of(problems, path=settings.path)


def reference_errors(settings: Settings, text: str | None) -> list[ConfigError]:
    """Names used twice, digests naming an unknown source."""
    problems: list[ConfigError] = []
    names = [s.name for s in settings.sources]
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            problems.append(
                ConfigError(
                    f"the source name {n!r} is used twice",
                    path=settings.path,
                    line=find_line(text, ("sources", i, "name")) if text else None,
                    setting=f"sources[{i}].name",
                    example='name = "arxiv-ai"',
                )
            )
        seen.add(n)
    digest_names: set[str] = set()
    for i, d in enumerate(settings.digests):
        if d.name in digest_names:
            problems.append(
                ConfigError(
                    f"the digest name {d.name!r} is used twice",
                    path=settings.path,
                    line=find_line(text, ("digests", i, "name")) if text else None,
                    setting=f"digests[{i}].name",
                    example='name = "weekly"',
                )
            )
        digest_names.add(d.name)
        for s in d.sources:
            if s not in seen:
                close = difflib.get_close_matches(s, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                known = ", ".join(names) or "none"
                problems.append(
                    ConfigError(
                        f"names an unknown source {s!r} (known: {known}){hint}",
                        path=settings.path,
                        line=find_line(text, ("digests", i, "sources")) if text else None,
                        setting=f"digests[{i}].sources",
                        example=f'sources = ["{names[0]}"]' if names else None,
                    )
                )
    return problems


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
