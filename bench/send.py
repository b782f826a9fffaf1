"""Benchmark: deliver one edition to N subscribers over SMTP, against the ceiling.

An aiosmtpd sink runs in its own process (``tests/smtp_server.py PORT``). For each pool
size, the real path (outbox claims in SQLite, rendering once, personalizing, SMTP over
reused connections, recording each delivery) is timed against a bare aiosmtplib loop
sending N prebuilt messages of the same size over the same number of connections.
Prints messages per second, their ratio and peak memory. Not a test: run it by hand::

    python bench/send.py            # N=500, pools 1 and 4
    python bench/send.py 10000 1 4
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import aiosmtplib  # noqa: E402
from smtp_server import free_port, sample_digest  # noqa: E402

from newsletter import outbox  # noqa: E402
from newsletter.deliver import (  # noqa: E402
    Composer,
    RetryPolicy,
    SmtpMailer,
    SmtpSettings,
    deliver_edition,
)
from newsletter.mail import MailSettings  # noqa: E402
from newsletter.models import Subscriber  # noqa: E402
from newsletter.store import Store  # noqa: E402

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def composer() -> Composer:
    digest = sample_digest(40)
    return Composer(
        lambda interests: digest,
        mail=MailSettings(base_url="https://news.example.org", domain="news.example.org"),
        period="2026-11-28",
        secret="bench-secret",
        list_title="Daily Papers",
    )


def real_path(port: int, n: int, pool: int, folder: Path) -> float:
    with Store(f"sqlite:///{folder / f'bench-{pool}.sqlite'}") as store:
        ed, _ = store.create_edition("daily", "2026-11-28", [], now=NOW)
        subs = [
            outbox.save_subscriber(store, Subscriber(email=f"u{i:05d}@example.org"), now=NOW)
            for i in range(n)
        ]
        outbox.enqueue(store, ed.id, subs, now=NOW)
        mailer = SmtpMailer(SmtpSettings(host="127.0.0.1", port=port, security="none"))
        started = time.perf_counter()
        report = asyncio.run(
            deliver_edition(
                store,
                ed.id,
                mailer,
                composer(),
                clock=lambda: datetime.now(UTC),
                policy=RetryPolicy(),
                workers=pool,
            )
        )
        seconds = time.perf_counter() - started
        assert report.sent == n, report
    return n / seconds


def ceiling(port: int, n: int, pool: int, size: int) -> float:
    body = b"Subject: x\r\n\r\n" + (b"x" * 75 + b"\r\n") * (size // 77)

    async def one_connection(count: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        for i in range(count):
            await client.sendmail("bench@example.org", [f"u{i}@example.org"], body)
        await client.quit()

    async def run() -> None:
        share = [n // pool + (1 if i < n % pool else 0) for i in range(pool)]
        await asyncio.gather(*(one_connection(c) for c in share))

    started = time.perf_counter()
    asyncio.run(run())
    return n / (time.perf_counter() - started)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    pools = [int(p) for p in sys.argv[2:]] or [1, 4]
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "smtp_server.py"), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={"PYTHONPATH": str(ROOT)},
    )
    try:
        assert sink.stdout is not None and sink.stdout.readline().strip() == b"ready"
        sample = composer().message(
            email="u@example.org", name="", key="1", interests=(), fmt="html", now=NOW
        )
        size = len(sample.data)
        print(f"{n} messages of {size / 1000:.1f} KB to an aiosmtpd sink in its own process")
        with tempfile.TemporaryDirectory() as tmp:
            for pool in pools:
                real = real_path(port, n, pool, Path(tmp))
                bare = ceiling(port, n, pool, size)
                print(
                    f"pool {pool}: newsletter {real:7.0f} msg/s | bare aiosmtplib "
                    f"{bare:7.0f} msg/s | ratio {real / bare:.2f}"
                )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory (this process): {peak:.0f} MB")
    finally:
        if sink.stdin:
            sink.stdin.close()
        sink.wait(timeout=10)


if __name__ == "__main__":
    main()
