"""`newsletter preview --screenshots`: PNGs of the email in a real chromium with each
view's height, and a clear message (not a failure) where chromium is missing, so
`make demo` goes on without it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.services.screenshots import VIEWS
from tests.factories import db_url, make_papers, seeded_store, write_config

pytestmark = pytest.mark.browser

ENV = {"NEWSLETTER_SECRET_KEY": "k" * 32}


def setup(tmp: Path) -> Path:
    cfg = write_config(tmp)
    now = datetime.now(UTC)  # preview builds the current edition: its entries must be new
    seeded_store(db_url(tmp), now=now, entries=make_papers(12, now=now)).close()
    return cfg


def test_preview_writes_screenshots_and_reports_heights(tmp_path: Path) -> None:
    cfg = setup(tmp_path)
    shots = tmp_path / "shots"
    r = CliRunner().invoke(
        main,
        [
            "preview",
            "--config",
            str(cfg),
            "-o",
            str(tmp_path / "p.html"),
            "--screenshots",
            str(shots),
        ],
        env=ENV,
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    for view in VIEWS:
        png = shots / f"daily-{view.name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG", view.name
        line = next(x for x in r.output.splitlines() if str(png) in x)
        assert f"{view.width} px:" in line and "px high" in line and "no sideways scroll" in line


def test_without_chromium_the_preview_says_so_and_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = setup(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no chromium on this PATH
    r = CliRunner().invoke(
        main,
        [
            "preview",
            "--config",
            str(cfg),
            "-o",
            str(tmp_path / "p.html"),
            "--screenshots",
            str(tmp_path / "s"),
        ],
        env=ENV,
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    assert "screenshots skipped: chromium is not installed (apt-get install chromium)" in r.output
    assert (tmp_path / "p.html").is_file() and not (tmp_path / "s").exists()
