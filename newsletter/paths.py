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
