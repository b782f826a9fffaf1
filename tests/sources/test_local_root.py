"""Issue 11, finding 9: ``file://`` sources are read only under ``fetch.local_root`` (the
config file's folder by default), and an OPML import says when it adds local files."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import main
from newsletter.config import load_config
from newsletter.models import Source
from newsletter.sources.opml import opml_warnings, read_opml
from tests.factories import FEEDS, source_config, write_config

ENV = {"NEWSLETTER_SECRET_KEY": "k3y-k3y-k3y-secret", "NEWSLETTER_SMTP_PASSWORD": "hunter2-pw"}


def test_local_root_defaults_to_the_config_folder(tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "c.toml"
    cfg.parent.mkdir()
    cfg.write_text('[[sources]]\nname = "a"\nurl = "feeds/a.xml"\n', encoding="utf-8")
    assert load_config(cfg).fetch.local_root == (str(cfg.parent.resolve()),)
    cfg.write_text('[fetch]\nlocal_root = "../data"\n', encoding="utf-8")
    assert load_config(cfg).fetch.local_root == (str((tmp_path / "data").resolve()),)


def test_a_source_outside_local_root_is_refused_and_never_quoted(tmp_path: Path) -> None:
    secrets = tmp_path / "elsewhere" / "environ"
    secrets.parent.mkdir()
    secrets.write_bytes(b"NEWSLETTER_SMTP_PASSWORD=hunter2-pw\x00SECRET=k3y-k3y-k3y\x00")
    inside = tmp_path / "conf"
    inside.mkdir()
    (inside / "feed.xml").write_bytes((FEEDS / "arxiv-rss-cs.AI.xml").read_bytes())
    cfg = write_config(
        inside,
        sources=[
            source_config("environ", "file:///proc/self/environ"),
            source_config("secrets", secrets.as_uri()),
            source_config("escape", str(inside / ".." / "elsewhere" / "environ")),
            source_config("ok", str(inside / "feed.xml")),
        ],
        fetch={"local_root": "."},
    )
    runner = CliRunner()
    fetched = runner.invoke(main, ["fetch", "--config", str(cfg)], env=ENV)
    listed = runner.invoke(main, ["sources", "list", "--config", str(cfg)], env=ENV)
    for result in (fetched, listed):
        assert "hunter2" not in result.output
        assert "k3y" not in result.output
    for name in ("environ", "secrets", "escape"):
        assert f"{name}: error local file outside fetch.local_root" in fetched.output
    assert "outside fetch.local_root" in listed.output


def test_opml_import_warns_about_local_files() -> None:
    data = b"""<?xml version="1.0"?><opml version="2.0"><body>
      <outline text="Web" xmlUrl="https://example.org/feed.xml"/>
      <outline text="Env" xmlUrl="file:///proc/self/environ"/>
      <outline text="Path" xmlUrl="/etc/passwd"/>
      <outline text="Ftp" xmlUrl="ftp://example.org/feed.xml"/>
    </body></opml>"""
    warnings = opml_warnings(read_opml(data))
    assert len(warnings) == 3
    assert "file:///proc/self/environ" in warnings[0] and "local file" in warnings[0]
    assert "local file" in warnings[1]
    assert "not an http(s) URL" in warnings[2]
    assert opml_warnings([Source("a", "https://example.org/")]) == []
