"""Benchmark: deliver one edition to N subscribers over SMTP, against the ceiling, on
SQLite and on PostgreSQL.

An aiosmtpd sink runs in its own process (``tests/smtp_server.py PORT``). The real path
(outbox claims in the database, rendering once, personalizing, SMTP over reused
connections, recording each delivery) sends one edition to N subscribers; the ceiling is a bare
aiosmtplib loop sending N prebuilt messages of the same size over the same number of
connections. The prebuilt message is one real message composed beforehand: aiosmtpd's
cost grows with the number of lines, and a filler body of 77-byte lines has about 60 %
of the lines of a real message of the same size, so it would flatter the ceiling. The
ceiling runs in two halves, before and after the real path, so that a change of load on a
shared machine weighs on both alike; in several rounds (``--rounds``, 4), each an
edition of N / rounds between two halves of the ceiling's share, and on each database.
PostgreSQL is a throwaway cluster started like the tests' (``tests/pg.py``: Debian's
server binaries, a temporary folder, a free port, durability off). Prints a Markdown
section: both rates, their ratio, CPU per message (sender, sink and, for PostgreSQL, the
server processes) and the sender process's peak memory. Not a test: run it by hand::

    .venv/bin/python bench/send.py                      # 10,000 subscribers, 4 connections
    .venv/bin/python bench/send.py --subscribers 1000 --pool 2 --database postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import aiosmtplib  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from smtp_server import free_port, sample_digest  # noqa: E402

from newsletter.config import MailConfig, SmtpConfig  # noqa: E402
from newsletter.deliver.loop import RetryPolicy, deliver_edition  # noqa: E402
from newsletter.deliver.mailers import SmtpMailer  # noqa: E402
from newsletter.render.email import MailSettings  # noqa: E402
from newsletter.services.editions import Composer  # noqa: E402
from newsletter.store import outbox  # noqa: E402
from newsletter.store.database import Store  # noqa: E402
from newsletter.store.schema import subscribers_table  # noqa: E402
from newsletter.store.subscribers import all_subscribers  # noqa: E402
from tests.pg import PgCluster  # noqa: E402

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
TARGET_RATIO = 0.95
TARGET_MEMORY_MB = 300


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux ``/proc``)."""
    try:
        fields = _stat(pid)
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of process ``pid``, of its children that have ended (which it waited
    for) and of those still running: a PostgreSQL server and its backends."""
    try:
        fields = _stat(pid)
    except OSError:
        return float("nan")
    ticks = sum(int(f) for f in fields[11:15])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _stat(int(entry.name))
        except OSError:
            continue
        if int(child[1]) == pid:
            ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Timing:
    """One measured run: messages, wall seconds, this process's, the sink's and the
    database server's CPU seconds."""

    messages: int
    seconds: float
    cpu: float
    sink_cpu: float
    db_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def __add__(self, other: Timing) -> Timing:
        return Timing(
            self.messages + other.messages,
            self.seconds + other.seconds,
            self.cpu + other.cpu,
            self.sink_cpu + other.sink_cpu,
            self.db_cpu + other.db_cpu,
        )


class Clock:
    """Measures one run: wall time, this process's CPU, the sink process's CPU and the
    database server's (``db_pid``, with its backends)."""

    def __init__(self, sink_pid: int, db_pid: int | None = None) -> None:
        self.sink_pid, self.db_pid = sink_pid, db_pid
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        self.sink = cpu_seconds(sink_pid)
        self.db = tree_cpu_seconds(db_pid) if db_pid else 0.0

    def stop(self, messages: int) -> Timing:
        return Timing(
            messages,
            time.perf_counter() - self.wall,
            time.process_time() - self.cpu,
            cpu_seconds(self.sink_pid) - self.sink,
            (tree_cpu_seconds(self.db_pid) - self.db) if self.db_pid else 0.0,
        )


@dataclass(frozen=True)
class Sink:
    """The aiosmtpd sink process."""

    port: int
    pid: int


def composer() -> Composer:
    digest = sample_digest(40)
    return Composer(
        lambda interests: digest,
        mail=MailSettings(
            MailConfig(domain="news.example.org"), base_url="https://news.example.org"
        ),
        period="2026-11-28",
        secret="bench-secret",
        list_title="Daily Papers",
    )


def prepare(store: Store, n: int, rounds: int) -> list[int]:
    """``rounds`` editions, each with the same ``n`` queued subscribers (bulk inserts:
    setup is not measured)."""
    rows = [
        {"email": f"u{i:05d}@example.org", "created_at": NOW, "updated_at": NOW} for i in range(n)
    ]
    with store.begin() as conn:
        for i in range(0, n, 500):
            conn.execute(sa.insert(subscribers_table), rows[i : i + 500])
    subscribers = all_subscribers(store)
    editions = []
    for r in range(rounds):
        ed, _ = store.create_edition("daily", f"2026-11-{r + 1:02d}", [], now=NOW)
        outbox.enqueue(store, ed.id, subscribers, now=NOW)
        editions.append(ed.id)
    return editions


def real_path(
    store: Store, edition_id: int, sink: Sink, n: int, pool: int, db_pid: int | None
) -> Timing:
    mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=sink.port, security="none"))
    clock = Clock(sink.pid, db_pid)
    report = asyncio.run(
        deliver_edition(
            store,
            edition_id,
            mailer,
            composer(),
            clock=lambda: datetime.now(UTC),
            policy=RetryPolicy(),
            workers=pool,
        )
    )
    timing = clock.stop(n)
    if report.sent != n or outbox.counts(store, edition_id)["sent"] != n:
        raise SystemExit(f"the real path did not send every message: {report}")
    return timing


def ceiling(sink: Sink, n: int, pool: int, body: bytes) -> Timing:
    # The sink's cost grows with the number of lines, not only bytes: the prebuilt
    # message is a real one (same size and same line structure), composed beforehand.

    async def one_connection(count: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, start_tls=False)
        await client.connect()
        for i in range(count):
            await client.sendmail("bench@example.org", [f"u{i}@example.org"], body)
        await client.quit()

    async def run() -> None:
        share = [n // pool + (1 if i < n % pool else 0) for i in range(pool)]
        await asyncio.gather(*(one_connection(c) for c in share if c))

    clock = Clock(sink.pid)
    asyncio.run(run())
    return clock.stop(n)


@dataclass(frozen=True)
class Result:
    """The real path and its ceiling on one database."""

    database: str
    real: Timing
    bare: Timing

    @property
    def ratio(self) -> float:
        return self.real.rate / self.bare.rate


def measure(database: str, sink: Sink, n: int, pool: int, body: bytes, rounds: int) -> Result:
    """``rounds`` rounds of: half a share of the ceiling, an edition of ``n / rounds`` by
    the real path on ``database``, the other half (a change of load on a shared machine
    weighs on both alike)."""
    with contextlib.ExitStack() as stack:
        db_pid: int | None = None
        if database == "postgres":
            cluster = PgCluster()
            stack.callback(cluster.stop)
            cluster.start()
            url = cluster.url(cluster.create_database())
            db_pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite:///{tmp}/bench.sqlite"
        store = stack.enter_context(Store(url))
        per = n // rounds
        real = bare = Timing(0, 0.0, 0.0, 0.0)
        for edition_id in prepare(store, per, rounds):
            bare = bare + ceiling(sink, per // 2, pool, body)
            real = real + real_path(store, edition_id, sink, per, pool, db_pid)
            bare = bare + ceiling(sink, per - per // 2, pool, body)
    return Result(database, real, bare)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000, metavar="N")
    parser.add_argument("--pool", type=int, default=4, help="SMTP connections (default 4)")
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgres", "both"),
        default="both",
        help="the outbox's database (default: both, one after the other)",
    )
    parser.add_argument(
        "--rounds", type=int, default=4, help="alternations of ceiling and real path (4)"
    )
    args = parser.parse_args()
    n, pool = args.subscribers - args.subscribers % args.rounds, args.pool
    databases = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "smtp_server.py"), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
        sink = Sink(port, process.pid)
        sample = composer().message(
            email="u00000@example.org", name="", key="1", interests=(), fmt="html", now=NOW
        )
        size, lines = len(sample.data), sample.data.count(b"\n")
        results = [measure(db, sink, n, pool, sample.data, args.rounds) for db in databases]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        if process.stdin:
            process.stdin.close()
        process.wait(timeout=30)
    worst = min(r.ratio for r in results)
    # Each target gets its own verdict: one sentence for both read as if both missed.
    ratio_verdict = "met" if worst >= TARGET_RATIO else "**not met**"
    memory_verdict = "met" if peak < TARGET_MEMORY_MB else "**not met**"
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print("### One edition over SMTP against a bare aiosmtplib loop")
    print()
    print(
        f"{n:,} subscribers, messages of {size / 1000:.1f} KB, {pool} connections, "
        f"{lines} lines, aiosmtpd sink in its own process on 127.0.0.1. "
        "The ceiling sends the same number of copies of one real message, composed "
        f"beforehand; on each database, {args.rounds} rounds of: half a share of the "
        f"ceiling, an edition of {n // args.rounds:,} by the real path, the other half. "
        "PostgreSQL: a local cluster on 127.0.0.1 (TCP), durability off as in the tests; "
        "its CPU is the server's and its backends'."
    )
    print()
    print("| database | path | messages/s | seconds | CPU ms/message: sender | sink | database |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        for name, t in (
            ("`newsletter` (outbox, personalize, record)", r.real),
            ("bare aiosmtplib", r.bare),
        ):
            per = 1000 / t.messages
            db = f"{t.db_cpu * per:.2f}" if r.database == "postgres" and t is r.real else ""
            print(
                f"| {r.database} | {name} | {t.rate:,.0f} | {t.seconds:.1f} "
                f"| {t.cpu * per:.2f} | {t.sink_cpu * per:.2f} | {db} |"
            )
    print()
    ratios = ", ".join(f"{r.database} **{r.ratio:.2f}**" for r in results)
    print(
        f"Ratio of the ceiling: {ratios} (target >= {TARGET_RATIO} on each: "
        f"{ratio_verdict}); peak memory of the sender process **{peak:.0f} MB** (target < "
        f"{TARGET_MEMORY_MB} MB: {memory_verdict}). Load average after the run: {load}."
    )


if __name__ == "__main__":
    main()
