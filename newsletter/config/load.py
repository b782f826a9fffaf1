"""Reading a config file: TOML, ``NEWSLETTER_*`` overrides, validation into ``Settings``
with every problem named by file and line. ``load_config`` is the only I/O of the
settings."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from newsletter.config.errors import (
    check_references,
    config_problem,
    missing_config,
    syntax_example,
)
from newsletter.config.settings import ENV_OVERRIDES, Settings
from newsletter.errors import ConfigError
from newsletter.paths import default_config_path


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    for var, dotted in ENV_OVERRIDES.items():
        value = env.get(var)
        if value is None or value == "":
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        else:
            node[leaf] = value
    return data


def settings_from_dict(
    data: Mapping[str, Any],
    *,
    path: str | None = None,
    text: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Validate a parsed TOML document (plus environment overrides) into ``Settings``.

    ``text`` is the file's text, used only to find the line of a bad setting.
    """
    env = os.environ if env is None else env
    merged = _apply_env(_deep_copy(dict(data)), env)
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        problems = [
            config_problem(err, Settings, ENV_OVERRIDES, path=path, text=text, env=env)
            for err in exc.errors()
        ]
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        raise ConfigError.of(problems, path=path) from None
    if path is not None:
        settings = settings.model_copy(update={"path": path})
    settings = _with_local_roots(settings, path)
    check_references(settings, text)
    return settings


def _with_local_roots(settings: Settings, path: str | None) -> Settings:
    """``fetch.local_root`` as absolute folders: relative to the config file's folder,
    that folder when unset."""
    base = Path(path).expanduser().resolve().parent if path else Path.cwd()
    configured = settings.fetch.local_root
    roots = (configured,) if isinstance(configured, str) else tuple(configured or ())
    resolved = tuple(str((base / Path(r).expanduser()).resolve()) for r in roots if r.strip())
    fetch = settings.fetch.model_copy(update={"local_root": resolved or (str(base),)})
    return settings.model_copy(update={"fetch": fetch})


def load_config(path: str | Path | None = None, *, required: bool = False) -> Settings:
    """Read and validate a TOML config file.

    With ``path`` None, the default location is used if it exists, else built-in defaults
    (unless ``required``). Errors are ``ConfigError`` naming the file and line.
    """
    explicit = path is not None or "NEWSLETTER_CONFIG" in os.environ
    p = Path(path) if path is not None else default_config_path()
    if not p.exists():
        if explicit or required:
            how = (
                "--config"
                if path is not None
                else "$NEWSLETTER_CONFIG"
                if explicit
                else "the user config folder"
            )
            raise missing_config(p, how=how)
        return settings_from_dict({})
    try:
        raw = p.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"is not UTF-8 text ({exc.reason})", path=str(p)) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read ({exc.strerror})", path=str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(m.group(1)) if m else None
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        bad = text.splitlines()[line - 1].strip() if line and line <= len(text.splitlines()) else ""
        raise ConfigError(
            f"is not valid TOML: {reason}" + (f": {bad}" if bad else ""),
            path=str(p),
            line=line,
            example=syntax_example(text, line),
        ) from None
    return settings_from_dict(data, path=str(p), text=text)


def resolve_path(settings: Settings, value: str) -> Path:
    """A path from the config, relative to the working directory (as users expect when
    they run ``newsletter`` from their project folder)."""
    return Path(value).expanduser()


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d
