"""Where newsletter keeps its files by default: the user's config, data and cache folders
(XDG on Linux, through platformdirs), unless ``NEWSLETTER_CONFIG`` or the config say
otherwise. No third-party import at module level: every command reads these."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "newsletter"


def default_config_path() -> Path:
    """``$NEWSLETTER_CONFIG`` or ``<user config dir>/newsletter/config.toml``."""
    env = os.environ.get("NEWSLETTER_CONFIG")
    if env:
        return Path(env)
    # Imported here: a command given --config (or a database URL) never needs it.
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_database_url() -> str:
    """SQLite in the user's data directory."""
    import platformdirs

    data = Path(platformdirs.user_data_dir(APP_NAME))
    return f"sqlite:///{data / 'newsletter.sqlite'}"


def template_cache_dir() -> Path | None:
    """Where compiled templates are kept between runs: ``$NEWSLETTER_CACHE_DIR`` or the
    user's cache folder, ``templates`` inside it (made private to the user); None when it
    cannot be made or written (then every run compiles its templates again)."""
    env = os.environ.get("NEWSLETTER_CACHE_DIR")
    if env:
        base = Path(env).expanduser()
    else:
        import platformdirs

        base = Path(platformdirs.user_cache_dir(APP_NAME))
    folder = base / "templates"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK | os.X_OK) else None
