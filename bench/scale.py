"""Benchmark: one edition of 100,000 subscribers on PostgreSQL, sent by 1, 2 and 4
``newsletter send`` processes at once, to an aiosmtpd sink in its own process.

Set-up (not measured): a throwaway PostgreSQL cluster started like the tests'
(``tests/pg.py``), the subscribers in bulk, the edition planned and its outbox filled
once. Each round puts every outbox row back in ``queued`` and starts K real
``newsletter send --digest daily`` processes together (each plans the edition, finds it
recorded and its rows queued, and delivers: ``FOR UPDATE SKIP LOCKED`` claims, group
commits). Measured per round: wall time from the first start to the last exit, messages
per second, CPU per message of each sender process (``os.wait4``), of the sink and of
the PostgreSQL server with its backends (``/proc``). Every message must arrive once: the
sink counts them and the outbox must say ``sent`` for every row.

Then the sizes PostgreSQL reports for the outbox and subscribers tables and their
indexes (``pg_relation_size``), and a claim of 32 rows timed at the end of a sent edition
(the worst place: every row before it is ``sent``), for the 1-million analysis in
BENCHMARKS.md. Not a test: run it by hand::

    .venv/bin/python bench/scale.py                          # 100,000 subscribers, 1 2 4
    .venv/bin/python bench/scale.py --subscribers 20000 --processes 1 2
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import sqlalchemy as sa  # noqa: E402
from send import cpu_seconds, tree_cpu_seconds  # noqa: E402

from newsletter.config import load_config  # noqa: E402
from newsletter.services.editions import plan_edition  # noqa: E402
from newsletter.store import outbox  # noqa: E402
from newsletter.store.database import Store  # noqa: E402
from newsletter.store.schema import outbox_table, subscribers_table  # noqa: E402
from newsletter.store.subscribers import subscribers_of  # noqa: E402
from tests.factories import local_smtp, make_papers, write_config  # noqa: E402
from tests.pg import PgCluster  # noqa: E402
from tests.smtp_server import free_port  # noqa: E402

POOL = 4
"""SMTP connections per sender process (``smtp.pool_size``)."""


def log(msg: str) -> None:
    print(f"[scale] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Round:
    """One round: K sender processes sending the whole edition."""

    processes: int
    seconds: float
    sent: list[int]
    """Messages each process sent."""
    cpu: list[float]
    """CPU seconds of each process."""
    peak_mb: list[float]
    """Peak resident memory of each process."""
    sink_cpu: float
    db_cpu: float
    messages: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def seed(url: str, n: int, config: Path) -> int:
    """Entries, ``n`` subscribers and the edition with its outbox rows; its id."""
    now = datetime.now(UTC)
    settings = load_config(config)
    with Store(url) as store:
        store.add_entries(make_papers(3, now=now), now=now)
        rows = [
            {"email": f"reader{i:06d}@example.org", "created_at": now, "updated_at": now}
            for i in range(n)
        ]
        with store.begin() as conn:
            for i in range(0, n, 5000):
                conn.execute(sa.insert(subscribers_table), rows[i : i + 5000])
        cfg = settings.digest("daily")
        plan = plan_edition(store, settings, cfg, now=now, create=True)
        assert plan.edition is not None, "the edition was not planned"
        outbox.enqueue(store, plan.edition.id, subscribers_of(store, "daily", now=now), now=now)
        return plan.edition.id


def requeue(url: str, edition_id: int) -> None:
    """Every row of the edition back to ``queued``, as a fresh edition's are."""
    t = outbox_table
    with Store(url) as store, store.begin() as conn:
        conn.execute(
            sa.update(t)
            .where(t.c.edition_id == edition_id)
            .values(
                state="queued",
                claim=None,
                claimed_at=None,
                attempts=0,
                reply=None,
                message_id=None,
                sent_at=None,
                next_try=None,
                last_error=None,
            )
        )
    with Store(url) as store, store.engine.connect() as conn:
        # Dead row versions of the last round would weigh on the next one's claims.
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            sa.text("VACUUM ANALYZE outbox")
        )


def sink_count(sink: subprocess.Popen[bytes]) -> int:
    """Messages the sink has accepted so far (it answers a line on stdin)."""
    assert sink.stdin is not None and sink.stdout is not None
    sink.stdin.write(b"count\n")
    sink.stdin.flush()
    return int(sink.stdout.readline())


def run_round(k: int, config: Path, sink: subprocess.Popen[bytes], db_pid: int, n: int) -> Round:
    env = {k_: v for k_, v in os.environ.items() if not k_.startswith("NEWSLETTER_")}
    env["NEWSLETTER_SECRET_KEY"] = "scale-bench-secret"
    cmd = [str(Path(sys.executable).with_name("newsletter")), "send", "--config", str(config)]
    cmd += ["--digest", "daily"]
    before = sink_count(sink)
    sink_cpu, db_cpu = cpu_seconds(sink.pid), tree_cpu_seconds(db_pid)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / f"{i}.log" for i in range(k)]
        procs = []
        for out in outs:
            with out.open("wb") as f:
                procs.append(subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT))
        cpu, peak = [], []
        for p in procs:
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            cpu.append(usage.ru_utime + usage.ru_stime)
            peak.append(usage.ru_maxrss / 1024)
        seconds = time.perf_counter() - started
        texts = [o.read_text() for o in outs]
    sink_cpu, db_cpu = cpu_seconds(sink.pid) - sink_cpu, tree_cpu_seconds(db_pid) - db_cpu
    if any(p.returncode for p in procs):
        raise SystemExit("a sender failed:\n" + "\n".join(texts))
    sent = [sum(int(m) for m in re.findall(r"sent (\d+) now", t)) for t in texts]
    received = sink_count(sink) - before
    if sum(sent) != n or received != n:
        raise SystemExit(f"expected {n} messages: the senders say {sent}, the sink {received}")
    return Round(k, seconds, sent, cpu, peak, sink_cpu, db_cpu, n)


def sizes(url: str) -> list[tuple[str, int]]:
    """(relation, bytes) for the outbox and subscribers tables and their indexes."""
    query = sa.text(
        "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c "
        "JOIN pg_namespace s ON s.oid = c.relnamespace "
        "WHERE s.nspname = 'public' AND c.relkind IN ('r', 'i') "
        "AND (c.relname LIKE 'outbox%' OR c.relname LIKE 'subscribers%' "
        "OR c.relname LIKE 'ix_outbox%' OR c.relname LIKE 'ix_subscribers%' "
        "OR c.relname LIKE 'uq_outbox%') ORDER BY c.relkind DESC, c.relname"
    )
    with Store(url) as store, store.engine.connect() as conn:
        return [(str(name), int(size)) for name, size in conn.execute(query)]


def claim_ms(url: str, edition_id: int, repeat: int = 20) -> tuple[float, float]:
    """Milliseconds one claim of 32 rows takes when every row before them is sent (the
    rows are given back after each try): as a sender claims (after the last id it took),
    and from the edition's first row (a sender's first claim)."""
    t = outbox_table
    out = []
    with Store(url) as store:
        with store.begin() as conn:
            last = conn.execute(
                sa.select(t.c.id).where(t.c.edition_id == edition_id).order_by(t.c.id.desc())
                .limit(32)
            ).scalars().all()  # fmt: skip
            conn.execute(sa.update(t).where(t.c.id.in_(last)).values(state="queued"))
        for after in (min(last) - 1, 0):
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                rows = outbox.claim(
                    store, edition_id, now=datetime.now(UTC), limit=32, prefix="b", after=after
                )
                times.append(time.perf_counter() - began)
                assert len(rows) == 32
                with store.begin() as conn:
                    conn.execute(
                        sa.update(t).where(t.c.id.in_(last)).values(state="queued", claim=None)
                    )
            times.sort()
            out.append(times[len(times) // 2] * 1000)
    return out[0], out[1]


def report(
    n: int, rounds: list[Round], rels: list[tuple[str, int]], claim: tuple[float, float]
) -> None:
    base = rounds[0]
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print("### One PostgreSQL edition, several sender processes")
    print()
    print(
        f"{n:,} subscribers on PostgreSQL (a local cluster, durability off as in the "
        f"tests), sent by K `newsletter send` processes started together, {POOL} SMTP "
        "connections each, to one aiosmtpd sink in its own process; every message "
        f"arrived once. {os.cpu_count()} cores shared by the senders, the sink and the "
        "database server."
    )
    print()
    print(
        "| processes | messages/s | ratio to 1 | seconds | CPU ms/message per sender "
        "process | senders | sink | PostgreSQL | sent by each | peak MB per process |"
    )
    print("| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | --- |")
    for r in rounds:
        per = [1000 * c / s if s else float("nan") for c, s in zip(r.cpu, r.sent, strict=True)]
        print(
            f"| {r.processes} | {r.rate:,.0f} | {r.rate / base.rate:.2f} | {r.seconds:.1f} "
            f"| {', '.join(f'{x:.2f}' for x in per)} | {1000 * sum(r.cpu) / n:.2f} "
            f"| {1000 * r.sink_cpu / n:.2f} | {1000 * r.db_cpu / n:.2f} "
            f"| {', '.join(f'{s:,}' for s in r.sent)} "
            f"| {', '.join(f'{m:.0f}' for m in r.peak_mb)} |"
        )
    print()
    total = [1000 * (sum(r.cpu) + r.sink_cpu + r.db_cpu) / n for r in rounds]
    print(
        "CPU ms per message, all processes together: "
        + ", ".join(f"{r.processes} sender(s) {t:.2f}" for r, t in zip(rounds, total, strict=True))
        + f". Load average after the run: {load}."
    )
    print()
    print(f"Sizes PostgreSQL reports after the runs ({n:,} outbox rows, {n:,} subscribers):")
    print()
    print(f"| relation | size at {n:,} | per row | at 1,000,000 (linear) |")
    print("| --- | ---: | ---: | ---: |")
    for name, size in rels:
        print(
            f"| `{name}` | {size / 2**20:.1f} MB | {size / n:.0f} B "
            f"| {size / n * 1_000_000 / 2**20:,.0f} MB |"
        )
    print()
    print(
        f"One claim of 32 rows at the end of the sent edition, as a sender claims (after "
        f"the last id it took): {claim[0]:.2f} ms, about {32_000 / claim[0]:,.0f} rows per "
        f"second for one claimer in a row; from the edition's first row (a sender's first "
        f"claim, which walks past every row already sent): {claim[1]:.2f} ms. Medians of 20."
    )
    print()
    analysis(n, rounds, rels, claim)


def analysis(
    n: int, rounds: list[Round], rels: list[tuple[str, int]], claim: tuple[float, float]
) -> None:
    """The 1-million paragraph, from this run's figures."""
    million = 1_000_000
    best = max(rounds, key=lambda r: r.rate)
    cores = os.cpu_count() or 1
    total_cpu = 1000 * (sum(best.cpu) + best.sink_cpu + best.db_cpu) / n
    sink_share = best.sink_cpu / (sum(best.cpu) + best.sink_cpu + best.db_cpu)
    outbox_bytes = sum(size for name, size in rels if "outbox" in name)
    subscriber_bytes = sum(size for name, size in rels if "subscribers" in name)
    peak = max(m for r in rounds for m in r.peak_mb)
    print("#### At 1 million subscribers")
    print()
    print(
        f"- **Rows**: one outbox row per subscriber and edition: the outbox with its three "
        f"indexes takes {outbox_bytes / n:.0f} bytes a row here, so about "
        f"{outbox_bytes / n * million / 2**20:,.0f} MB per edition of a million (linear in "
        f"rows), and the subscribers table with its indexes about "
        f"{subscriber_bytes / n * million / 2**20:,.0f} MB. A daily edition adds that every "
        "day: old editions' rows are the operator's to archive or delete (docs/operating.md)."
    )
    print(
        f"- **Claims per second**: a claim takes 32 rows, so the best rate here "
        f"({best.rate:,.0f} messages/s with {best.processes} process(es)) is "
        f"{best.rate / 32:,.0f} claims/s; one claim took {claim[0]:.2f} ms at the end of "
        "the edition, so claims are far from the limit. They stay flat through an edition "
        "because each starts after the last id its sender took; a sender's first claim "
        f"walks past the rows already sent ({claim[1]:.1f} ms at {n:,}, so of the order "
        f"of {claim[1] * million / n / 1000:.1f} s at a million if linear)."
    )
    print(
        f"- **Time**: at {best.rate:,.0f} messages/s an edition of a million takes "
        f"{million / best.rate / 60:,.0f} minutes on this machine. All processes together "
        f"spend {total_cpu:.2f} ms of CPU per message ({100 * sink_share:.0f} % of it in "
        f"the sink), so {cores} cores cap the rate near {cores * 1000 / total_cpu:,.0f} "
        "messages/s: the limit here is the shared CPU, with the sink on it; with the mail "
        "relay on its own machine, add sender processes until the relay or PostgreSQL's "
        "CPU is the limit."
    )
    print(
        f"- **Memory**: the largest sender process peaked at {peak:.0f} MB at {n:,} "
        "subscribers; what is above its start-up grows with the list (each process loads "
        "the digest's subscribers to enqueue the edition): compare runs at two sizes "
        "(`--subscribers`) to scale it to yours."
    )
    print(
        "- **What to tune**: autovacuum on the outbox (each message updates its row twice "
        "and `state` is indexed, so an edition of a million leaves two million dead row "
        "versions: `ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0.01)`); "
        "`shared_buffers` to hold the current edition's rows and the subscribers; "
        "`smtp.pool_size` and the number of sender processes against the relay's limits; "
        "a pooler in session mode past a few dozen processes."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000, metavar="N")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4], metavar="K")
    args = parser.parse_args()
    n = args.subscribers
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "smtp_server.py"), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    cluster = PgCluster()
    try:
        assert sink.stdout is not None and sink.stdout.readline().strip() == b"ready"
        cluster.start()
        db_pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
        url = cluster.url(cluster.create_database())
        with tempfile.TemporaryDirectory() as tmp:
            config = write_config(
                Path(tmp),
                database_url=url,
                smtp=local_smtp(port, pool_size=POOL, timeout=60),
            )
            log(f"seeding {n:,} subscribers")
            edition_id = seed(url, n, config)
            rounds = []
            for k in args.processes:
                requeue(url, edition_id)
                log(f"{k} sender process(es)")
                rounds.append(run_round(k, config, sink, db_pid, n))
                with Store(url) as store:
                    if outbox.counts(store, edition_id)["sent"] != n:
                        raise SystemExit("the outbox does not say sent for every row")
        rels = sizes(url)
        claim = claim_ms(url, edition_id)
    finally:
        if sink.stdin:
            sink.stdin.close()
        sink.wait(timeout=30)
        cluster.stop()
    report(n, rounds, rels, claim)


if __name__ == "__main__":
    main()
