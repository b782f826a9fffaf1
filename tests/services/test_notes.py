"""The editor's note file: read when an edition's digest is built, one per edition with
``{period}``; a missing, unreadable, oversized or non-UTF-8 file is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config import DigestConfig, settings_from_dict
from newsletter.errors import EXIT_USAGE, ConfigError
from newsletter.services.editions import archived_edition, plan_edition
from newsletter.services.notes import MAX_NOTE_BYTES, read_note
from newsletter.store.database import Store
from tests.factories import NOW, digest_config, make_papers, make_settings, seed


def cfg(note: str | None) -> DigestConfig:
    return DigestConfig(name="daily", note=note)


def test_no_note_set_is_no_note() -> None:
    assert read_note(cfg(None), "2030-06-01") == ""


def test_the_file_is_read_as_markdown(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_bytes("\ufeff**Hello** readers,\r\nwelcome.\r\n\r\n".encode())
    assert read_note(cfg(str(path)), "2030-06-01") == "**Hello** readers,\nwelcome."


def test_period_picks_the_file_of_each_edition(tmp_path: Path) -> None:
    (tmp_path / "daily-2030-06-01.md").write_text("First of June", encoding="utf-8")
    pattern = str(tmp_path / "daily-{period}.md")
    assert read_note(cfg(pattern), "2030-06-01") == "First of June"
    assert read_note(cfg(pattern), "2030-06-02") == ""  # no file for that edition: no note


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "cannot be read"),
        (lambda p: p.write_bytes(b"caf\xe9"), "is not UTF-8 text"),
        (lambda p: p.write_bytes(b"x" * (MAX_NOTE_BYTES + 1)), "a note is at most"),
    ],
    ids=["missing", "a folder", "latin-1", "too big"],
)
def test_a_bad_file_is_a_clear_error_naming_it(tmp_path: Path, make, problem: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "note.md"
    make(path)
    with pytest.raises(ConfigError) as err:
        read_note(cfg(str(path)), "2030-06-01")
    message = str(err.value)
    assert str(path) in message and problem in message
    assert "daily" in message and 'note = "notes/daily.md"' in message
    assert err.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize("value", ["", "  ", "notes/{date}.md", "notes/{}.md"])
def test_a_bad_note_setting_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="note"):
        settings_from_dict({"digests": [{"name": "daily", "note": value}]}, env={})


def test_an_edition_carries_its_note_to_the_mail_and_the_archive(
    tmp_path: Path, store: Store
) -> None:
    (tmp_path / "daily-2030-06-01.md").write_text("A *note* for June 1", encoding="utf-8")
    settings = make_settings(
        tmp_path, digests=[digest_config(note=str(tmp_path / "daily-{period}.md"))]
    )
    seed(store, entries=make_papers(4, now=NOW))
    plan = plan_edition(store, settings, settings.digests[0], now=NOW)
    assert plan.edition is not None and plan.digest is not None
    assert plan.digest.note == "A *note* for June 1"
    import jinja2

    from newsletter.render.templates import make_environment

    env: jinja2.Environment = make_environment()
    page = archived_edition(store, settings, settings.digests[0], plan.edition, env=env)
    assert "A <em>note</em> for June 1" in page.html


def test_a_missing_note_stops_the_edition_before_it_is_recorded(
    tmp_path: Path, store: Store
) -> None:
    settings = make_settings(tmp_path, digests=[digest_config(note=str(tmp_path / "gone.md"))])
    seed(store, entries=make_papers(4, now=NOW))
    with pytest.raises(ConfigError, match=r"gone\.md does not exist"):
        plan_edition(store, settings, settings.digests[0], now=NOW)
    assert store.last_edition("daily") is None
