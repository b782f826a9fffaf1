"""The email commands end to end: subscribers, send (file and SMTP, idempotent, dry run,
test copy, failures, bad settings), preview; and a sender killed with SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from newsletter.cli import main
from newsletter.models import Entry, Subscriber
from newsletter.store import outbox
from newsletter.store.database import Store
from newsletter.store.subscribers import save_subscriber
from tests.smtp_server import Recorder, smtp_server

WORDS = [
    *("transformer", "diffusion", "robotics", "protein", "quantum", "compiler", "database"),
    *("kernel", "graph", "vision", "speech", "agents", "retrieval", "sparse", "federated"),
    *("causal", "bayesian", "reinforcement", "symbolic", "tokenizer", "optimizer", "memory"),
    *("energy", "climate", "genome"),
]
SECRET = {"NEWSLETTER_SECRET_KEY": "test-secret", "NEWSLETTER_SMTP_PASSWORD": ""}


def seed(db: str, n: int = 12) -> None:
    now = datetime.now(UTC)
    entries = [
        Entry(
            id=str(i),
            source="papers",
            title=f"{WORDS[i % len(WORDS)].title()} {WORDS[(i * 7 + 3) % len(WORDS)]} study {i}",
            link=f"https://example.org/p/{i}",
            published=now - timedelta(hours=i),
            text=" ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 40)),
        )
        for i in range(n)
    ]
    with Store(db) as store:
        store.add_entries(entries, now=now)


def write_config(tmp: Path, *, delivery: str = "file", port: int = 25, extra: str = "") -> Path:
    cfg = tmp / "config.toml"
    cfg.write_text(
        f"""
database_url = "sqlite:///{tmp / "db.sqlite"}"
[[sources]]
name = "papers"
url = "https://example.org/feed.xml"
[[digests]]
name = "daily"
title = "Daily Papers"
[mail]
delivery = "{delivery}"
mail_dir = "{tmp / "mail"}"
from_address = "Daily Papers <daily@news.example.org>"
domain = "news.example.org"
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout = 5
backoff = 0.01
pool_size = 2
{extra}
[web]
base_url = "https://news.example.org"
""",
        encoding="utf-8",
    )
    seed(f"sqlite:///{tmp / 'db.sqlite'}")
    return cfg


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    runner = CliRunner()
    return runner.invoke(main, list(args), env={**SECRET, **(env or {})}, catch_exceptions=False)


def add(cfg: Path, *addresses: str) -> None:
    for a in addresses:
        r = invoke("subscribers", "add", a, "--config", str(cfg))
        assert r.exit_code == 0, r.output


def test_subscribers_commands(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
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
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == [
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
    cfg = write_config(tmp_path)
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


def test_send_over_smtp(tmp_path: Path) -> None:
    script = {
        "gone@example.org": ["rcpt:550 5.1.1 no such user"],
        "busy@example.org": ["451 4.3.0 later"] * 10,
    }
    with smtp_server(Recorder(script=script)) as (ctl, rec):
        cfg = write_config(tmp_path, delivery="smtp", port=ctl.port)
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


def test_send_test_copy_leaves_the_outbox_alone(tmp_path: Path) -> None:
    with smtp_server() as (ctl, rec):
        cfg = write_config(tmp_path, delivery="smtp", port=ctl.port)
        add(cfg, "ada@example.org")
        r = invoke("send", "--to", "me@example.org", "--config", str(cfg))
        assert r.exit_code == 0 and "sent a test copy" in r.output
        assert rec.count() == {"me@example.org": 1}
    with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        assert store.last_edition("daily") is None


def test_bad_settings_exit_2(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, delivery="smtp", extra='password = "in-the-file"')
    add(cfg, "ada@example.org")
    r = invoke("send", "--config", str(cfg))
    assert r.exit_code == 2 and "NEWSLETTER_SMTP_PASSWORD" in r.output
    cfg = write_config(tmp_path, delivery="smtp")
    r = invoke("send", "--config", str(cfg), env={"NEWSLETTER_SECRET_KEY": ""})
    assert r.exit_code == 2 and "NEWSLETTER_SECRET_KEY" in r.output
    assert invoke("send", "--digest", "nope", "--config", str(cfg)).exit_code == 2


def test_refused_login_is_a_clear_error(tmp_path: Path) -> None:
    with smtp_server(Recorder(script={}), auth=False) as (ctl, _):
        cfg = write_config(tmp_path, delivery="smtp", port=ctl.port, extra='username = "me"')
        add(cfg, "ada@example.org")
        r = invoke("send", "--config", str(cfg), env={"NEWSLETTER_SMTP_PASSWORD": "pw"})
    assert r.exit_code == 1
    assert "error:" in r.output and "smtp" in r.output.lower()


def test_preview_writes_the_html_and_prints_its_size(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    out = tmp_path / "preview.html"
    r = invoke("preview", "--output", str(out), "--config", str(cfg))
    assert r.exit_code == 0, r.output
    assert f"wrote {out}: HTML" in r.output and "KB" in r.output
    assert out.read_text().startswith("<!DOCTYPE html>")


# -- crash safety ----------------------------------------------------------------------------


def test_a_sender_killed_at_random_points_loses_nothing_and_repeats_nothing_sent(
    tmp_path: Path,
) -> None:
    """A real sender process (the outbox loop over SMTP, 2 connections) is killed with
    SIGKILL three times while sending, then run to the end. Every subscriber gets the
    edition; nobody recorded as sent gets it again; duplicates are bounded by the
    at-least-once window (one message per connection per crash)."""
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    now = datetime(2026, 11, 28, 7, tzinfo=UTC)
    addresses = [f"user{i:03d}@example.org" for i in range(120)]
    with Store(db) as store:
        ed, _ = store.create_edition("daily", "2026-11-28", [], now=now)
        assert ed.id == 1
        subs = [save_subscriber(store, Subscriber(email=a), now=now) for a in addresses]
        outbox.enqueue(store, ed.id, subs, now=now)
    here = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parent), str(here)])}
    rng = random.Random(1234)
    kills = 0
    with smtp_server() as (ctl, rec):
        cmd = [sys.executable, str(here / "smtp_server.py"), "sender", db, str(ctl.port), "300"]
        sent_snapshots: dict[str, int] = {}
        for _ in range(3):
            start = sum(rec.count().values())
            target = start + rng.randint(3, 25)
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 30
            while sum(rec.count().values()) < target and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            kills += 1
            time.sleep(0.1)
            with Store(db) as store:
                for row in outbox.rows(store, 1, "sent"):
                    sent_snapshots[row.email] = rec.count()[row.email]
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert final.returncode == 0, final.stderr
        counts = rec.count()
    assert set(counts) == set(addresses)  # nobody lost
    for address, seen in sent_snapshots.items():
        assert counts[address] == seen, f"{address} was sent again after being recorded"
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= kills * 2
    with Store(db) as store:
        assert outbox.counts(store, 1)["sent"] == len(addresses)
