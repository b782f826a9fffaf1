"""``--note FILE.md`` on ``digest``, ``send`` and ``preview``, and the digest's ``note``
setting, end to end: the note reaches every output; a missing file is a clear error."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from newsletter.cli import main
from tests.factories import (
    FEEDS,
    db_url,
    digest_config,
    make_papers,
    seeded_store,
    write_config,
)

SECRET = {"NEWSLETTER_SECRET_KEY": "test-secret", "NEWSLETTER_SMTP_PASSWORD": ""}
NOTE = "**Hello** readers: see [the changes](https://news.example.org/changes).\n"


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env={**SECRET, **(env or {})})


def note_file(tmp_path: Path, text: str = NOTE) -> Path:
    path = tmp_path / "note.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_digest_with_a_note_in_every_format(tmp_path: Path) -> None:
    feed = str(FEEDS / "hackernews-frontpage.rss.xml")
    note = str(note_file(tmp_path))
    text = invoke("digest", feed, "--note", note, "--format", "text")
    assert text.exit_code == 0, text.output
    assert "**Hello** readers: see the changes [1]." in text.stdout
    assert "\n[1] https://news.example.org/changes\n" in text.stdout
    md = invoke("digest", feed, "--note", note, "--format", "markdown")
    assert NOTE.strip() in md.stdout
    page = invoke("digest", feed, "--note", note, "--format", "html")
    assert "<strong>Hello</strong>" in page.stdout
    rss = invoke("digest", feed, "--format", "rss", env={"NEWSLETTER_NOTE": note})
    assert "Editor&apos;s note" in rss.stdout or "Editor's note" in rss.stdout


def test_a_missing_note_file_exits_2_naming_it(tmp_path: Path) -> None:
    feed = str(FEEDS / "hackernews-frontpage.rss.xml")
    r = invoke("digest", feed, "--note", str(tmp_path / "nope.md"))
    assert r.exit_code == 2
    assert "nope.md" in r.output and "does not exist" in r.output
    assert "Traceback" not in r.output


def test_a_missing_configured_note_exits_2_naming_it(tmp_path: Path) -> None:
    feed = str(FEEDS / "hackernews-frontpage.rss.xml")
    cfg = write_config(
        tmp_path,
        sources=[{"name": "hn", "url": feed}],
        digests=[digest_config(note=str(tmp_path / "notes" / "daily.md"))],
    )
    r = invoke("digest", "--config", str(cfg), "--format", "markdown")
    assert r.exit_code == 2, r.output
    assert "daily.md does not exist" in r.output and "the note of digest 'daily'" in r.output
    assert "Traceback" not in r.output


def test_send_with_a_note_reaches_html_text_and_markdown_subscribers(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    now = datetime.now(UTC)
    seeded_store(db_url(tmp_path), now=now, entries=make_papers(6, now=now)).close()
    for address, fmt in (("ada@example.org", "html"), ("bob@example.org", "markdown")):
        r = invoke("subscribers", "add", address, "--format", fmt, "--config", str(cfg))
        assert r.exit_code == 0, r.output
    r = invoke("send", "--config", str(cfg), "--note", str(note_file(tmp_path)))
    assert r.exit_code == 0, r.output
    mails = {f.name: f for f in (tmp_path / "mail").rglob("*.eml")}
    ada = message_from_bytes(mails["ada@example.org.eml"].read_bytes(), policy=policy.default)
    bob = message_from_bytes(mails["bob@example.org.eml"].read_bytes(), policy=policy.default)
    assert isinstance(ada, EmailMessage) and isinstance(bob, EmailMessage)
    for msg in (ada, bob):
        assert msg.get_content_type() == "multipart/alternative"
        html = msg.get_body(("html",))
        assert html is not None and "<strong>Hello</strong>" in html.get_content()
    ada_text = ada.get_body(("plain",))
    bob_text = bob.get_body(("plain",))
    assert ada_text is not None and bob_text is not None
    assert "**Hello** readers: see the changes [1]." in ada_text.get_content()
    assert "see [the changes](https://news.example.org/changes)" in bob_text.get_content()


def test_preview_with_a_note(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    now = datetime.now(UTC)
    seeded_store(db_url(tmp_path), now=now, entries=make_papers(3, now=now)).close()
    out = tmp_path / "preview.html"
    note = str(note_file(tmp_path))
    r = invoke("preview", "--config", str(cfg), "--note", note, "--output", str(out))
    assert r.exit_code == 0, r.output
    assert "<strong>Hello</strong>" in out.read_text(encoding="utf-8")


def test_check_reads_the_note_files(tmp_path: Path) -> None:
    note = tmp_path / "daily.md"
    cfg = write_config(tmp_path, digests=[digest_config(note=str(note))])
    r = invoke("check", "--config", str(cfg))
    assert r.exit_code == 2 and "daily.md does not exist" in r.output
    note.write_text("Hello", encoding="utf-8")
    assert invoke("check", "--config", str(cfg)).exit_code == 0
    per_edition = write_config(
        tmp_path, digests=[digest_config(note=str(tmp_path / "{period}.md"))]
    )
    assert invoke("check", "--config", str(per_edition)).exit_code == 0
