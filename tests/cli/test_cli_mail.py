"""The email commands end to end: subscribers, send (file and SMTP, idempotent, dry run,
test copy, failures, bad settings), preview; and `newsletter send` killed with SIGKILL."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.store import outbox
from newsletter.store.database import Store
from tests.factories import (
    db_url,
    local_smtp,
    make_papers,
    make_subscriber,
    seed,
    seeded_store,
    write_config,
)
from tests.smtp_server import SmtpSink
from tests.support import HANG_GUARD, kill_mid_send, process_env, wait_until

SECRET = {"NEWSLETTER_SECRET_KEY": "test-secret", "NEWSLETTER_SMTP_PASSWORD": ""}


def setup(tmp: Path, *, port: int | None = None, **smtp: Any) -> Path:
    """A config (file delivery, or SMTP to 127.0.0.1:``port``) and a database of 12 papers."""
    cfg = write_config(tmp, smtp=None if port is None else local_smtp(port, pool_size=2, **smtp))
    now = datetime.now(UTC)
    seeded_store(db_url(tmp), now=now, entries=make_papers(12, now=now)).close()
    return cfg


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    runner = CliRunner()
    return runner.invoke(main, list(args), env={**SECRET, **(env or {})}, catch_exceptions=False)


def add(cfg: Path, *addresses: str) -> None:
    for a in addresses:
        r = invoke("subscribers", "add", a, "--config", str(cfg))
        assert r.exit_code == 0, r.output


def test_subscribers_commands(tmp_path: Path) -> None:
    cfg = setup(tmp_path)
    c = str(cfg)
    assert (
        "added ada@example.org"
        in invoke("subscribers", "add", "Ada@Example.org", "--name", "Ada", "--config", c).output
    )
    r = invoke("subscribers", "add", "not an address", "--config", c)
    assert r.exit_code == 2 and "not an address" in r.output
    assert (
        invoke("subscribers", "add", "x@example.org", "--digest", "nope", "--config", c).exit_code
        == 2
    )
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("email,name\nbob@example.org,Bob\nbroken@,X\ncarol@example.org,C\n")
    r = invoke("subscribers", "import", str(csv_file), "--config", c)
    assert r.exit_code == 0
    assert "line 3" in r.output and "broken@" in r.output and "imported 2 new" in r.output
    r = invoke("subscribers", "list", "--config", c)
    assert [line.split()[0] for line in r.stdout.splitlines()[1:]] == [
        "ada@example.org",
        "bob@example.org",
        "carol@example.org",
    ]
    assert (
        "unsubscribed bob@example.org"
        in invoke("subscribers", "remove", "bob@example.org", "--config", c).output
    )
    assert invoke("subscribers", "remove", "zed@example.org", "--config", c).exit_code == 1
    out = tmp_path / "export.csv"
    assert invoke("subscribers", "export", "-o", str(out), "--config", c).exit_code == 0
    assert out.read_text().splitlines()[0].startswith("email,name,digests")
    assert "bob@example.org" in out.read_text() and "unsubscribed" in out.read_text()


def test_send_with_the_file_mailer_is_idempotent(tmp_path: Path) -> None:
    cfg = setup(tmp_path)
    add(cfg, "ada@example.org", "bob@example.org")
    r = invoke("send", "--dry-run", "--config", str(cfg))
    assert r.exit_code == 0 and "would send to 2 subscribers" in r.output
    assert not (tmp_path / "mail").exists()
    r = invoke("send", "--config", str(cfg))
    assert r.exit_code == 0, r.output
    assert "sent 2 now" in r.output
    files = sorted((tmp_path / "mail").rglob("*.eml"))
    assert [f.name for f in files] == ["ada@example.org.eml", "bob@example.org.eml"]
    msg = message_from_bytes(files[0].read_bytes())
    assert msg["Subject"] and msg.get_content_type() == "multipart/alternative"
    r = invoke("send", "--config", str(cfg))
    assert r.exit_code == 0 and "sent 0 now (2 in all)" in r.output
    # A subscriber who joins later gets the same edition, nobody else gets it again.
    add(cfg, "carol@example.org")
    r = invoke("send", "--config", str(cfg))
    assert "sent 1 now (3 in all)" in r.output
    assert len(list((tmp_path / "mail").rglob("*.eml"))) == 3


def test_send_over_smtp(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    rec = smtp_sink.recorder
    rec.script.update(
        {
            "gone@example.org": ["rcpt:550 5.1.1 no such user"],
            "busy@example.org": ["451 4.3.0 later"] * 10,
        }
    )
    cfg = setup(tmp_path, port=smtp_sink.port)
    add(cfg, "ada@example.org", "gone@example.org", "busy@example.org", "bob@example.org")
    r = invoke("send", "--config", str(cfg))
    assert r.exit_code == 1
    assert "gone@example.org: 550 5.1.1 no such user" in r.output
    assert "1 queued for retry, 1 failed" in r.output
    assert rec.count() == {"ada@example.org": 1, "bob@example.org": 1}
    # Again: nothing new for the delivered, the failed stay failed, the retry waits.
    r = invoke("send", "--config", str(cfg))
    assert r.exit_code == 0 and "sent 0 now" in r.output
    assert rec.count() == {"ada@example.org": 1, "bob@example.org": 1}


def test_send_test_copy_leaves_the_outbox_alone(
    tmp_path: Path, smtp_sink: SmtpSink, store: Store
) -> None:
    cfg = setup(tmp_path, port=smtp_sink.port)
    add(cfg, "ada@example.org")
    r = invoke("send", "--to", "me@example.org", "--config", str(cfg))
    assert r.exit_code == 0 and "sent a test copy" in r.output
    assert smtp_sink.recorder.count() == {"me@example.org": 1}
    assert store.last_edition("daily") is None


def test_bad_settings_exit_2(tmp_path: Path) -> None:
    cfg = setup(tmp_path, port=25, password="in-the-file")
    add(cfg, "ada@example.org")
    r = invoke("send", "--config", str(cfg))
    assert r.exit_code == 2 and "NEWSLETTER_SMTP_PASSWORD" in r.output
    cfg = setup(tmp_path, port=25)
    # Without NEWSLETTER_SECRET_KEY links are signed with the key generated in the data
    # folder (the one `serve` reads too); one that others can read is refused.
    key = tmp_path / "home-key"
    key.write_text("k" * 64)
    key.chmod(0o644)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("newsletter.services.tokens.key_file", lambda: key)
        r = invoke("send", "--config", str(cfg), env={"NEWSLETTER_SECRET_KEY": ""})
    assert r.exit_code == 2 and "chmod 600" in r.output
    assert invoke("send", "--digest", "nope", "--config", str(cfg)).exit_code == 2


def test_refused_login_is_a_clear_error(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    cfg = setup(tmp_path, port=smtp_sink.port, username="me")
    add(cfg, "ada@example.org")
    r = invoke("send", "--config", str(cfg), env={"NEWSLETTER_SMTP_PASSWORD": "pw"})
    assert r.exit_code == 1
    assert "error:" in r.output and "smtp" in r.output.lower()


def test_preview_writes_the_html_and_prints_its_size(tmp_path: Path) -> None:
    cfg = setup(tmp_path)
    out = tmp_path / "preview.html"
    r = invoke("preview", "--output", str(out), "--config", str(cfg))
    assert r.exit_code == 0, r.output
    assert f"wrote {out}: HTML" in r.output and "KB" in r.output
    assert out.read_text().startswith("<!DOCTYPE html>")


# -- crash safety ----------------------------------------------------------------------------

CRASH_SUBSCRIBERS = 100
CRASH_KILLS = 4
CRASH_POOL = 2
CRASH_RATE = 50
"""Messages per second (``smtp.rate_limit``): a run lasts about two seconds, long enough
for each kill to land mid-send."""


def test_newsletter_send_killed_mid_send_then_run_again(
    tmp_path: Path, smtp_sink: SmtpSink, store: Store
) -> None:
    """The real command (``python -m newsletter send``, 2 SMTP connections, rate-limited)
    is killed with SIGKILL at random points while it sends to a real SMTP server, several
    times, then run to the end. Each kill lands on a live process in the middle of the
    send; what the server received is accumulated across the runs. Every subscriber gets
    the edition; nobody recorded as sent at a kill gets it again; duplicates are at most
    one per connection per kill, and a duplicate is the same message (same Message-ID)."""
    rng = random.Random(20261129)
    rec = smtp_sink.recorder
    cfg = setup(tmp_path, port=smtp_sink.port, rate_limit=CRASH_RATE)
    addresses = [make_subscriber(i).email for i in range(CRASH_SUBSCRIBERS)]
    seed(store, now=datetime.now(UTC), subscribers=addresses)
    env = process_env(**SECRET)
    cmd = [sys.executable, "-m", "newsletter", "send", "--config", str(cfg)]

    def received() -> int:
        with rec.lock:
            return len(rec.messages)

    frozen: dict[str, int] = {}  # copies each address had when first seen recorded
    per_run: list[int] = []  # messages the server accepted during each run
    for kill in range(CRASH_KILLS):
        before = received()
        target = before + rng.randint(3, 15)
        kill_mid_send(cmd, env, received=received, target=target, log=tmp_path / f"{kill}.log")
        # What was in flight has reached the server, or never will: its connections are closed.
        wait_until(smtp_sink.idle, message="the killed sender's connections stay open")
        per_run.append(received() - before)
        with rec.lock:
            counts = rec.count()
        edition = store.last_edition("daily")
        assert edition is not None
        for row in outbox.rows(store, edition.id, "sent"):
            frozen.setdefault(row.email, counts[row.email])
    before = received()
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert final.returncode == 0, final.stdout + final.stderr
    per_run.append(received() - before)
    with rec.lock:
        counts = rec.count()
        ids: dict[str, set[str]] = {}
        for m in rec.messages:
            msg = message_from_bytes(m.data)
            ids.setdefault(m.rcpt_tos[0], set()).add(str(msg["Message-ID"]))

    assert all(n > 0 for n in per_run[:-1])  # every killed run was sending
    assert 0 < len(frozen) < CRASH_SUBSCRIBERS  # the kills landed mid-edition
    assert sum(per_run) == sum(counts.values())  # accumulated across the runs
    assert set(counts) == set(addresses)  # every subscriber got it
    for address, seen in frozen.items():
        assert counts[address] == seen, f"{address} was sent again after being recorded"
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= CRASH_KILLS * CRASH_POOL
    assert all(len(v) == 1 for v in ids.values())  # a copy sent again is the same message
    edition = store.last_edition("daily")
    assert edition is not None
    assert outbox.counts(store, edition.id)["sent"] == CRASH_SUBSCRIBERS
