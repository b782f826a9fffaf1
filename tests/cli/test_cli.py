"""The command line end to end: real files, a real local HTTP server, a real SQLite file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import feedparser
import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsletter.cli import main
from newsletter.store.database import Store
from tests.factories import digest_config, source_config, write_config

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
ROOT = Path(__file__).resolve().parents[2]
HN = FEEDS / "hackernews-frontpage.rss.xml"
ARXIV = FEEDS / "arxiv-api-query.atom.xml"


def all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        full = f"{prefix} {name}".strip()
        out.append((full, cmd))
        if isinstance(cmd, click.Group):
            out.extend(all_commands(cmd, full))
    return out


@pytest.mark.parametrize("name", [n for n, _ in all_commands(main)])
def test_every_command_has_help(runner: CliRunner, name: str) -> None:
    result = runner.invoke(main, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    cmd = dict(all_commands(main))[name]
    assert cmd.help and len(cmd.help.strip()) > 20, f"{name} needs help text"
    if not isinstance(cmd, click.Group):
        assert "--config" in result.output
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.name} needs help text"


def test_zero_config_one_off_digest_to_stdout(runner: CliRunner) -> None:
    result = runner.invoke(main, ["digest", str(HN)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Hacker News\n")  # named after the feed
    assert result.stdout.count("### ") == 30
    assert "Linux Sandboxes and Fil-C" in result.stdout


def test_one_off_digest_leaves_no_database(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["digest", str(HN), "--format", "text"])
    assert result.exit_code == 0
    data_home = Path(__import__("os").environ["XDG_DATA_HOME"])
    assert not list(data_home.rglob("*.sqlite"))


@pytest.mark.parametrize(
    ("suffix", "check"),
    [
        (".md", lambda s: s.startswith("# ")),
        (".html", lambda s: s.lstrip().lower().startswith("<!doctype html>")),
        (".txt", lambda s: "====" in s),
        (".rss", lambda s: feedparser.parse(s).version == "rss20"),
        (".atom", lambda s: feedparser.parse(s).version == "atom10"),
    ],
    ids=["markdown", "html", "text", "rss", "atom"],
)
def test_output_format_follows_suffix(
    runner: CliRunner, tmp_path: Path, suffix: str, check
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / f"digest{suffix}"
    result = runner.invoke(main, ["digest", str(ARXIV), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert check(out.read_text(encoding="utf-8"))


def test_max_items_and_omitted_note(runner: CliRunner) -> None:
    result = runner.invoke(main, ["digest", str(ARXIV), "--max-items", "5"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("### ") == 5
    assert "20 more items were left out" in result.stdout


def test_since_filters_by_date(runner: CliRunner) -> None:
    # The fixture's entries are from the past; a short window keeps none of them.
    result = runner.invoke(main, ["digest", str(ARXIV), "--since", "1d"])
    assert result.exit_code == 0, result.output
    assert "Nothing new" in result.stdout


def test_broken_source_is_a_warning_not_a_failure(
    runner: CliRunner, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/broken.xml").respond_with_data("oops", status=500)
    httpserver.expect_request("/garbage.xml").respond_with_data(b"\x00\xff not a feed")
    result = runner.invoke(
        main,
        ["digest", str(HN), httpserver.url_for("/broken.xml"), httpserver.url_for("/garbage.xml")],
    )
    assert result.exit_code == 0, result.output
    assert "Linux Sandboxes and Fil-C" in result.stdout
    assert "warning: " in result.stderr
    assert "/broken.xml" in result.stderr and "HTTP 500" in result.stderr
    assert "/garbage.xml" in result.stderr
    assert "Traceback" not in result.output


def test_no_readable_source_exits_1(
    runner: CliRunner, httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/gone.xml").respond_with_data("", status=410)
    result = runner.invoke(
        main, ["digest", httpserver.url_for("/gone.xml"), str(tmp_path / "missing.xml")]
    )
    assert result.exit_code == 1
    assert "no source could be read" in result.stderr
    assert "missing.xml" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["digest", str(HN), "--since", "yesterday"], "--since"),
        (["digest", str(HN), "--format", "pdf"], "pdf"),
        (["digest", "--config", "nope.toml"], "no config file found"),
        (["digest", str(HN), "--max-items", "0"], "max-items"),
    ],
    ids=["bad-since", "bad-format", "missing-config", "bad-max-items"],
)
def test_usage_errors_exit_2(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_config_names_file_and_line(runner: CliRunner, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[sources]]\nname = "a"\nurl = "a.xml"\nkind = "rss"\n', encoding="utf-8")
    for cmd in (["check"], ["fetch"], ["digest"]):
        result = runner.invoke(main, [*cmd, "--config", str(cfg)])
        assert result.exit_code == 2, result.output
        assert f"{cfg}, line 4: sources[0].kind" in result.stderr
        assert 'kind = "feed"' in result.stderr  # a valid example


def test_check_accepts_shipped_configs(runner: CliRunner) -> None:
    for name in ("demo.toml", "example.toml"):
        result = runner.invoke(main, ["check", "--config", str(ROOT / "config" / name)])
        assert result.exit_code == 0, result.output
        assert "ok" in result.stdout


def _config(tmp_path: Path, urls: dict[str, str], **digest: Any) -> Path:
    """A config of these sources and the digest "daily" (no mail or web settings)."""
    return write_config(
        tmp_path,
        sources=[source_config(name, url) for name, url in urls.items()],
        digests=[digest_config(title="Daily", **digest)],
        mail=None,
        web=None,
    )


def test_fetch_stores_entries_and_uses_conditional_get(
    runner: CliRunner, httpserver: HTTPServer, tmp_path: Path
) -> None:
    body = HN.read_bytes()
    seen: list[str | None] = []

    def handler(request: Request) -> Response:
        seen.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(body, headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    httpserver.expect_request("/hn.xml").respond_with_handler(handler)
    cfg = _config(tmp_path, {"hn": httpserver.url_for("/hn.xml"), "arxiv": str(ARXIV)})
    first = runner.invoke(main, ["fetch", "--config", str(cfg)])
    assert first.exit_code == 0, first.output
    assert "hn: ok 30 new of 30" in first.stderr
    assert "55 new entries" in first.stderr
    second = runner.invoke(main, ["fetch", "--config", str(cfg)])
    assert second.exit_code == 0, second.output
    assert "hn: not_modified" in second.stderr
    assert "0 new entries" in second.stderr
    assert seen == [None, '"v1"']
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert store.count_entries() == 55
    assert store.source_state("hn").etag == '"v1"'  # type: ignore[union-attr]
    store.close()


def test_fetch_reads_the_fetch_settings_of_the_config(
    runner: CliRunner, httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/hn.xml").respond_with_data(HN.read_bytes())
    httpserver.expect_request("/loop.xml").respond_with_data(
        b"", status=302, headers={"Location": "/loop.xml"}
    )
    cfg = write_config(
        tmp_path,
        sources=[
            source_config("hn", httpserver.url_for("/hn.xml")),
            source_config("loop", httpserver.url_for("/loop.xml")),
        ],
        digests=[digest_config(title="Daily")],
        mail=None,
        web=None,
        fetch={"user_agent": "from-config/1.0", "max_redirects": 2},
    )
    first = runner.invoke(main, ["fetch", "--config", str(cfg)])
    monkeypatch.setenv("NEWSLETTER_USER_AGENT", "from-env/2.0")
    second = runner.invoke(main, ["fetch", "--config", str(cfg), "--source", "hn"])

    assert first.exit_code == 0, first.output
    assert "too many redirects (more than 2)" in first.stderr
    agents = [r.headers["User-Agent"] for r, _ in httpserver.log if r.path == "/hn.xml"]
    assert agents == ["from-config/1.0", "from-env/2.0"]
    assert second.exit_code == 0, second.output


def test_fetch_gone_and_permanent_redirect(
    runner: CliRunner, httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/old.xml").respond_with_data(
        "", status=301, headers={"Location": httpserver.url_for("/new.xml")}
    )
    httpserver.expect_request("/new.xml").respond_with_data(HN.read_bytes())
    httpserver.expect_request("/gone.xml").respond_with_data("", status=410)
    cfg = _config(
        tmp_path, {"moved": httpserver.url_for("/old.xml"), "gone": httpserver.url_for("/gone.xml")}
    )
    result = runner.invoke(main, ["fetch", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "gone (" in result.stderr and "410" in result.stderr
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert store.source_state("moved").fetch_url == httpserver.url_for("/new.xml")  # type: ignore[union-attr]
    gone = store.source_state("gone")
    assert gone is not None and gone.status == "gone" and gone.error_count == 1
    store.close()
    again = runner.invoke(main, ["fetch", "--config", str(cfg)])
    assert "gone: skipped" in again.stderr
    # The moved source is now fetched from its new URL directly.
    paths = [r.path for r, _ in httpserver.log]
    assert paths.count("/old.xml") == 1 and paths.count("/new.xml") == 2
    assert paths.count("/gone.xml") == 1


def test_fetch_without_sources_is_a_config_error(runner: CliRunner, tmp_path: Path) -> None:
    cfg = tmp_path / "empty.toml"
    cfg.write_text("", encoding="utf-8")
    result = runner.invoke(main, ["fetch", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "no sources configured" in result.stderr


def test_configured_digest_writes_every_output(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out"
    outputs = {"markdown": out / "d.md", "html": out / "d.html", "rss": out / "feed.xml"}
    cfg = _config(tmp_path, {"hn": str(HN), "arxiv": str(ARXIV)}, outputs=outputs)
    result = runner.invoke(main, ["digest", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"d.md", "d.html", "feed.xml"}
    assert len(feedparser.parse((out / "feed.xml").read_bytes()).entries) == 50
    # --no-fetch reuses the stored entries.
    result = runner.invoke(main, ["digest", "--config", str(cfg), "--no-fetch", "--format", "text"])
    assert result.exit_code == 0
    assert "Linux Sandboxes and Fil-C" in result.stdout


def test_explain_prints_score_breakdown(runner: CliRunner) -> None:
    result = runner.invoke(main, ["digest", str(HN), "--explain", "--max-items", "3"])
    assert result.exit_code == 0
    lines = [ln for ln in result.stderr.splitlines() if " score " in ln]
    assert len(lines) == 3
    assert "freshness" in lines[0]


def test_sources_import_export_round_trip(runner: CliRunner, tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        sources=[source_config("hn", HN), source_config("arxiv", ARXIV, kind="feed", weight=2.5)],
        digests=[digest_config(title="Daily")],
    )
    exported = runner.invoke(main, ["sources", "export", "--config", str(cfg)])
    assert exported.exit_code == 0
    opml = tmp_path / "feeds.opml"
    opml.write_bytes(exported.stdout_bytes)
    (tmp_path / "x").mkdir()
    other = _config(tmp_path / "x", {})
    imported = runner.invoke(
        main, ["sources", "import", str(opml), "--config", str(other), "--write"]
    )
    assert imported.exit_code == 0, imported.output
    listed = runner.invoke(main, ["sources", "list", "--config", str(other)])
    assert str(HN) in listed.stdout.replace("\n", "") or "hackernews" in listed.stdout
    from newsletter.config import load_config

    back = {s.name: s for s in load_config(other).sources}
    assert back["arxiv"].kind == "feed" and back["arxiv"].weight == 2.5
    again = runner.invoke(main, ["sources", "import", str(opml), "--config", str(other)])
    assert "0 new sources (2 already configured)" in again.stderr


def test_python_dash_m_works() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "newsletter",
            "digest",
            str(HN),
            "--format",
            "text",
            "--max-items",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "HACKER NEWS" in result.stdout.upper()


def test_environment_overrides_apply_to_a_zero_config_digest(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "digest.md.j2").write_text("custom {{ digest.item_count }}\n", encoding="utf-8")
    monkeypatch.setenv("NEWSLETTER_TEMPLATE_DIR", str(tmp_path))
    result = runner.invoke(main, ["digest", str(HN)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "custom 30\n"


def test_a_file_named_on_the_command_line_is_read_wherever_it_is(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The working folder is elsewhere: fetch.local_root (default: it) does not hold the
    # file, but the person named it, so it is read; nothing else beside it is.
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = runner.invoke(main, ["digest", str(HN), "--max-items", "3"])
    assert result.exit_code == 0, result.output
    assert "outside fetch.local_root" not in result.output
    assert result.stdout.startswith("# ")
