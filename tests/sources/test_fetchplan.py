"""The fetch plan cache: a memo of the validated config's fetch settings, invalidated by
any change to what validation reads. Real files, real environment, real processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.errors import ConfigError
from newsletter.sources import fetchplan
from newsletter.sources.fetchplan import load_fetch_plan, plan_from_settings


def write_config(path: Path, *, sources: int = 2, extra: str = "") -> Path:
    lines = [f'database_url = "sqlite:///{path.parent / "db.sqlite"}"', extra]
    for i in range(sources):
        lines += ["[[sources]]", f'name = "s{i}"', f'url = "https://s{i}.test/feed.xml"']
    lines += ["[fetch]", "per_host = 2"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cached_files() -> list[Path]:
    return sorted(fetchplan.cache_dir().glob("fetch-plans/*.json"))


def test_plan_is_the_validated_settings_and_is_cached(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml")
    expected = plan_from_settings(load_config(cfg))
    assert load_fetch_plan(cfg) == expected
    assert len(cached_files()) == 1
    assert load_fetch_plan(cfg) == expected  # now from the cache
    assert expected.fetch.per_host == 2
    assert [s.name for s in expected.sources] == ["s0", "s1"]
    assert expected.path == str(cfg)


def test_changed_file_is_validated_again(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml")
    load_fetch_plan(cfg)
    write_config(cfg, sources=3)
    assert [s.name for s in load_fetch_plan(cfg).sources] == ["s0", "s1", "s2"]
    assert len(cached_files()) == 1  # the old plan was replaced, not kept beside it


def test_broken_file_after_a_good_one_is_an_error_not_the_old_plan(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml")
    load_fetch_plan(cfg)
    cfg.write_text(cfg.read_text() + "concurrency = 0\n", encoding="utf-8")  # [fetch] is last
    with pytest.raises(ConfigError, match="concurrency") as err:
        load_fetch_plan(cfg)
    assert err.value.line is not None


def test_environment_overrides_are_part_of_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path / "c.toml")
    first = load_fetch_plan(cfg)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{tmp_path / 'other.sqlite'}")
    assert load_fetch_plan(cfg).database_url.endswith("other.sqlite")
    monkeypatch.delenv("NEWSLETTER_DATABASE_URL")
    assert load_fetch_plan(cfg) == first


def test_default_database_follows_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[sources]]\nname = "a"\nurl = "https://a.test/f"\n', encoding="utf-8")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-1"))
    assert "data-1" in load_fetch_plan(cfg).database_url
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-2"))
    assert "data-2" in load_fetch_plan(cfg).database_url


def test_corrupt_or_foreign_cache_means_validating_again(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml")
    expected = load_fetch_plan(cfg)
    (cache,) = cached_files()
    for junk in (b"{not json", b'{"key": 1}', b"[]", b'{"key": null, "plan": {}}'):
        cache.write_bytes(junk)
        assert load_fetch_plan(cfg) == expected
    # A matching key with a plan of the wrong shape is no plan either.
    key = fetchplan._key(cfg)
    cache.write_text(f'{{"key": "{key}", "plan": {{"path": null}}}}', encoding="utf-8")
    assert load_fetch_plan(cfg) == expected


def test_cache_folder_that_is_a_file_costs_only_speed(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml")
    fetchplan.cache_dir().parent.mkdir(parents=True, exist_ok=True)
    fetchplan.cache_dir().write_text("not a folder")
    assert [s.name for s in load_fetch_plan(cfg).sources] == ["s0", "s1"]


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_fetch_plan(tmp_path / "nope.toml")
    assert cached_files() == []


PROBE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from newsletter.sources.fetchplan import load_fetch_plan
    plan = load_fetch_plan(Path(sys.argv[1]))
    print(len(plan.sources), "pydantic" in sys.modules)
    """
)


def test_second_run_loads_no_pydantic(tmp_path: Path) -> None:
    """What the cache is for, checked in real processes."""
    cfg = write_config(tmp_path / "c.toml", sources=5)

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", PROBE, str(cfg)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stdout.strip()

    assert run() == "5 True"
    assert run() == "5 False"
    write_config(cfg, sources=6)
    assert run() == "6 True"
