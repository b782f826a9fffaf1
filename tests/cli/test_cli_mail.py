"""The email commands end to end: subscribers, send (file and SMTP, idempotent, dry run,
test copy, failures, bad settings), preview; and `newsletter send` killed with SIGKILL."""

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

CRASH_SUBSCRIBERS = 100
CRASH_KILLS = 4
CRASH_POOL = 2
CRASH_RATE = 50
"""Messages per second (``smtp.rate_limit``): a run lasts about two seconds, long enough
for each kill to land mid-send."""


def test_newsletter_send_killed_mid_send_then_run_again(tmp_path: Path) -> None:
    """The real command (``python -m newsletter send``, 2 SMTP connections, rate-limited)
    is killed with SIGKILL at random points while it sends to a real SMTP server, several
    times, then run to the end. Each kill lands on a live process in the middle of the
    send; what the server received is accumulated across the runs. Every subscriber gets
    the edition; nobody recorded as sent at a kill gets it again; duplicates are at most
    one per connection per kill, and a duplicate is the same message (same Message-ID)."""
    rng = random.Random(20261129)
    with smtp_server() as (ctl, rec):
        cfg = write_config(
            tmp_path,
            delivery="smtp",
            port=ctl.port,
            extra=f"rate_limit = {CRASH_RATE}",
        )
        db = f"sqlite:///{tmp_path / 'db.sqlite'}"
        addresses = [f"reader{i:03d}@example.org" for i in range(CRASH_SUBSCRIBERS)]
        with Store(db) as store:
            for a in addresses:
                save_subscriber(store, Subscriber(email=a), now=datetime.now(UTC))
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env.update(SECRET)
        cmd = [sys.executable, "-m", "newsletter", "send", "--config", str(cfg)]

        def received() -> int:
            with rec.lock:
                return len(rec.messages)

        frozen: dict[str, int] = {}  # copies each address had when first seen recorded
        per_run: list[int] = []  # messages the server accepted during each run
        for kill in range(CRASH_KILLS):
            before = received()
            target = before + rng.randint(3, 15)
            log = tmp_path / f"run{kill}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
                deadline = time.monotonic() + 60
                while received() < target and proc.poll() is None:
                    assert time.monotonic() < deadline, "the sender made no progress"
                    time.sleep(0.002)
                assert proc.poll() is None, f"run {kill} ended before its kill:\n{log.read_text()}"
                proc.send_signal(signal.SIGKILL)
                assert proc.wait() == -signal.SIGKILL  # it died of the kill, mid-send
            time.sleep(0.2)  # what was in flight reaches the server (or never will)
            per_run.append(received() - before)
            with rec.lock:
                counts = rec.count()
            with Store(db) as store:
                edition = store.last_edition("daily")
                assert edition is not None
                for row in outbox.rows(store, edition.id, "sent"):
                    frozen.setdefault(row.email, counts[row.email])
        before = received()
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
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
    with Store(db) as store:
        edition = store.last_edition("daily")
        assert edition is not None
        assert outbox.counts(store, edition.id)["sent"] == CRASH_SUBSCRIBERS
