"""Configuration: validation, errors that name file/line/setting, environment overrides."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from newsletter.config import load_config, parse_duration, settings_from_dict
from newsletter.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
database_url = "sqlite:///x.sqlite"

[fetch]
timeout = 10

[[sources]]
name = "a"
url = "https://example.org/a.xml"

[[sources]]
name = "b"
url = "b.xml"

[[digests]]
name = "daily"
sources = ["a", "b"]
schedule = "0 7 * * *"
timezone = "Europe/Paris"

[[digests.topics]]
name = "LLMs"
patterns = ["\\\\bLLMs?\\\\b"]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_configs_are_valid() -> None:
    for name in ("demo.toml", "example.toml"):
        settings = load_config(ROOT / "config" / name)
        assert settings.sources, name
        assert settings.digests, name


def test_good_config_loads(tmp_path: Path) -> None:
    s = load_config(write(tmp_path, GOOD))
    assert [x.name for x in s.sources] == ["a", "b"]
    assert s.fetch.timeout == 10
    assert s.digest("daily").topics[0].name == "LLMs"
    assert s.digest(None).name == "daily"


@pytest.mark.parametrize(
    ("old", "new", "line", "setting", "example"),
    [
        ("timeout = 10", "timeout = -1", 4, "fetch.timeout", "timeout = 20"),
        (
            'schedule = "0 7 * * *"',
            'schedule = "every morning"',
            17,
            "digests[0].schedule",
            "0 7 * * *",
        ),
        (
            'timezone = "Europe/Paris"',
            'timezone = "Mars/Olympus"',
            18,
            "digests[0].timezone",
            "Europe/Paris",
        ),
        (
            'url = "b.xml"',
            'url = "b.xml"\nweight = "heavy"',
            13,
            "sources[1].weight",
            "weight = 1.5",
        ),
        (
            'patterns = ["\\\\bLLMs?\\\\b"]',
            'patterns = ["(unclosed"]',
            22,
            "digests[0].topics[0].patterns",
            "patterns",
        ),
        ("[fetch]", "[fetch]\ntimout = 3", 4, "fetch.timout", None),
        ("timeout = 10", "timeout = 10\nmax_redirects = -1", 5, "fetch.max_redirects", None),
    ],
    ids=[
        "negative-timeout",
        "bad-cron",
        "bad-timezone",
        "bad-weight",
        "bad-regex",
        "typo-key",
        "negative-redirects",
    ],
)
def test_errors_name_file_line_setting_and_example(
    tmp_path: Path, old: str, new: str, line: int, setting: str, example: str | None
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.path == str(path)
    assert err.line == line, str(err)
    assert err.setting == setting
    msg = str(err)
    assert msg.startswith(f"{path}, line {line}: {setting}: ")
    if example:
        assert example in msg


def test_unknown_source_reference(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('sources = ["a", "b"]', 'sources = ["a", "zz"]'))
    with pytest.raises(ConfigError, match="unknown source 'zz'") as info:
        load_config(path)
    assert info.value.line == 16


def test_invalid_toml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('name = "a"', 'name = "a'))
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(path)
    assert info.value.line == 7


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no config file found"):
        load_config(tmp_path / "nope.toml")


def test_no_default_file_gives_defaults() -> None:
    s = load_config(None)
    assert s.sources == ()
    assert s.resolved_database_url().startswith("sqlite:///")


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", "sqlite:///env.sqlite")
    monkeypatch.setenv("NEWSLETTER_FETCH_TIMEOUT", "3.5")
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "s3cret")
    s = load_config(write(tmp_path, GOOD))
    assert s.database_url == "sqlite:///env.sqlite"
    assert s.fetch.timeout == 3.5
    assert s.smtp.password is not None and s.smtp.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)


def test_bad_environment_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_FETCH_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="NEWSLETTER_FETCH_TIMEOUT"):
        settings_from_dict({})


def test_config_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_CONFIG", str(write(tmp_path, GOOD)))
    assert load_config(None).sources[0].name == "a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("36h", timedelta(hours=36)),
        ("7d", timedelta(days=7)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("30s", timedelta(seconds=30)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "soon", "7", "-1d", "1y"])
def test_parse_duration_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_unknown_digest_name() -> None:
    s = settings_from_dict({"digests": [{"name": "daily"}]})
    with pytest.raises(ConfigError, match="no digest named 'weekly'"):
        s.digest("weekly")


def test_loading_the_config_loads_no_http_client() -> None:
    # The fetch defaults live in config.py: reading settings imports neither httpx nor
    # the fetch module.
    code = (
        "import sys, newsletter.config; "
        "print(sorted(m for m in ('httpx', 'newsletter.sources.fetch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("section", ["fetch", "bounces"])
def test_poll_intervals_under_a_minute_are_refused_by_name(section: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict({section: {"poll_interval": "10s"}})
    assert f"{section}.poll_interval" in str(caught.value)
    assert "at least 1m" in str(caught.value)
    ok = settings_from_dict({section: {"poll_interval": "2m"}})
    assert getattr(ok, section).poll_interval == "2m"
