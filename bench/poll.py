"""Daemon poll: the ``newsletter run`` poll job over 1,000 local feeds that all answer 304,
cycle after cycle, in-process; and the HTTP client it runs on, next to aiohttp.

Run: ``.venv/bin/python bench/poll.py [--feeds 1000] [--cycles 50]`` (``make bench`` runs
it). Prints a Markdown section on stdout; progress goes to stderr.

1. ``bench/feeds.py`` serves the feeds (its own process, 127.0.0.1, a port the kernel
   picked; 304 on a matching ``If-None-Match`` / ``If-Modified-Since``).
2. A ``Daemon`` (the real one, ``newsletter.serve.daemon``) on a fresh SQLite file polls
   once to store every feed's validators, then ``--cycles`` more times with its clock
   moved on by the poll interval each time, so every source is due and answers 304. Each
   cycle's wall and CPU time (``time.process_time``, all threads) are taken around
   ``Daemon.poll``; resident memory (``/proc/self/statm``) after each.
3. The reference, same server, same run: the same number of conditional GETs through a
   bare client (no database, no bookkeeping), httpx and aiohttp, each in a venv under
   ``bench/.work/clients-venv`` (this venv's packages plus aiohttp), 4 at a time as the
   daemon's ``per_host``; and what importing each costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feeds import DEFAULT_SEED, LAST_MODIFIED
from harness import (
    WORK,
    current_rss_mb,
    feed_server,
    fmt_stats,
    log,
    measure,
    server_stats,
    venv_with,
)

TARGET_CYCLE_S = 1.0
TARGET_GROWTH_MB = 5.0
INTERVAL = timedelta(minutes=30)

# A bare client: N conditional GETs, 4 at a time, timed after one warm-up round.
BARE_CLIENT = r"""
import asyncio, json, statistics, sys, time
which, base, since = sys.argv[1], sys.argv[2], sys.argv[5]
n, rounds = int(sys.argv[3]), int(sys.argv[4])
urls = [f"{base}/feeds/{i}.xml" for i in range(n)]
headers = {"If-Modified-Since": since, "User-Agent": "bench"}

async def main():
    slots = asyncio.Semaphore(4)
    if which == "httpx":
        sys.modules["httpx._main"] = None  # as newsletter imports it: without its CLI
        import httpx
        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=16))
        async def one(url):
            async with slots:
                r = await client.get(url, headers=headers)
                assert r.status_code == 304, r.status_code
        close = client.aclose
    else:
        import aiohttp
        client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16, limit_per_host=4))
        async def one(url):
            async with slots:
                async with client.get(url, headers=headers, allow_redirects=False) as r:
                    await r.read()
                    assert r.status == 304, r.status
        close = client.close
    walls, cpus = [], []
    for i in range(rounds + 1):
        t, c = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(u) for u in urls))
        if i:  # the first round opens the connections
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
    await close()
    print(json.dumps({"wall": statistics.median(walls), "cpu": statistics.median(cpus)}))

asyncio.run(main())
"""

IMPORT_COST = r"""
import os, sys, time
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
if sys.argv[1] == "httpx":
    sys.modules["httpx._main"] = None
before = rss()
t = time.perf_counter()
__import__(sys.argv[1])
print(time.perf_counter() - t, rss() - before)
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def poll_cycles(base: str, feeds: int, cycles: int, db: Path) -> dict[str, Any]:
    """The daemon's poll job, ``cycles`` times after a first (cold) poll."""
    from newsletter.config import settings_from_dict
    from newsletter.serve.daemon import Daemon, DaemonOptions
    from newsletter.store.database import Store

    sources = [{"name": f"feed-{i:04d}", "url": f"{base}/feeds/{i}.xml"} for i in range(feeds)]
    settings = settings_from_dict({"database_url": f"sqlite:///{db}", "sources": sources}, env={})
    clock = Clock(datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    out: dict[str, Any] = {"walls": [], "cpus": [], "rss": [], "answers": []}
    with Store(settings.resolved_database_url()) as store:
        daemon = Daemon(
            settings,
            store,
            None,
            "bench",
            clock=clock,
            options=DaemonOptions(poll_interval=INTERVAL),
        )
        server_stats(base)
        t = time.perf_counter()
        await daemon.poll()
        out["cold"] = time.perf_counter() - t
        out["cold_answers"] = fmt_stats(server_stats(base))
        out["entries"] = store.count_entries()
        for i in range(cycles):
            clock.now += INTERVAL
            t, c = time.perf_counter(), time.process_time()
            await daemon.poll()
            out["walls"].append(time.perf_counter() - t)
            out["cpus"].append(time.process_time() - c)
            out["rss"].append(current_rss_mb())
            answers = server_stats(base)
            out["answers"].append(answers)
            if i % 10 == 9:
                log(f"cycle {i + 1}: {out['walls'][-1]:.3f}s, {out['rss'][-1]:.1f} MB")
        fetcher = daemon.fetcher
        out["clients_made"] = getattr(fetcher, "clients_made", None)
        await daemon.stop()
    return out


def bare_clients(base: str, feeds: int) -> tuple[dict[str, dict[str, float]], str]:
    """Each bare client's figures (wall, CPU, import time and memory); or why not."""
    python, why = venv_with("clients-venv", ["aiohttp"], project_deps=True)
    if python is None:
        return {}, why
    since = LAST_MODIFIED.strftime("%a, %d %b %Y %H:%M:%S GMT")
    figures: dict[str, dict[str, float]] = {}
    for which in ("httpx", "aiohttp"):
        run = measure([str(python), "-c", BARE_CLIENT, which, base, str(feeds), "5", since])
        if not run.ok:
            return figures, run.why()
        figures[which] = json.loads(run.stdout)
        imports = [measure([str(python), "-c", IMPORT_COST, which]) for _ in range(3)]
        costs = [tuple(map(float, r.stdout.split())) for r in imports if r.ok]
        if costs:
            figures[which]["import_s"] = min(c[0] for c in costs)
            figures[which]["import_mb"] = statistics.median(c[1] for c in costs)
        server_stats(base)
        log(f"bare {which}: {figures[which]}")
    return figures, ""


def report(args: argparse.Namespace, poll: dict[str, Any], bare: dict[str, Any], why: str) -> str:
    n, cycles = args.feeds, args.cycles
    walls, cpus, rss = poll["walls"], poll["cpus"], poll["rss"]
    all_304 = all(a == {"304": n} for a in poll["answers"])
    wall = statistics.median(walls)
    cpu_ms = statistics.median(cpus) / n * 1000
    growth = rss[-1] - rss[0]
    ref = bare.get("httpx")

    def ratio(a: float, b: float | None) -> str:
        return f"{a / b:.2f}×" if b else "n/a"

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    out = [
        f"### Daemon poll: {n:,} local feeds, all unchanged (304)",
        "",
        f"The real `Daemon.poll` (the `newsletter run` poll job), in-process, on a fresh "
        f"SQLite file, against `bench/feeds.py` on 127.0.0.1 ({n} feeds, {args.entries} "
        f"entries each). A first poll stored the validators ({poll['cold']:.1f} s, "
        f"{poll['cold_answers']}, {poll['entries']} entries); then {cycles} cycles with the "
        f"clock moved on {int(INTERVAL.total_seconds() // 60)} minutes each. "
        f"Server answers in those cycles: "
        + ("every request of every cycle a 304." if all_304 else "**not all 304**.")
        + f" HTTP clients the daemon made: {poll['clients_made']} for all cycles.",
        "",
        "| figure | newsletter daemon | reference, same run | ratio | target | met |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        f"| one poll cycle, wall (median of {cycles}; range "
        f"{min(walls):.3f}–{max(walls):.3f} s) | {wall:.3f} s | "
        + (f"bare httpx, {n} conditional GETs: {ref['wall']:.3f} s" if ref else "n/a")
        + f" | {ratio(wall, ref['wall'] if ref else None)} | ≤ {TARGET_CYCLE_S:.1f} s "
        f"| {met(wall <= TARGET_CYCLE_S)} |",
        f"| CPU per feed (median cycle) | {cpu_ms:.3f} ms | "
        + (f"bare httpx: {ref['cpu'] / n * 1000:.3f} ms per GET" if ref else "n/a")
        + f" | {ratio(cpu_ms, ref['cpu'] / n * 1000 if ref else None)} | | |",
        f"| resident memory after cycle 1 → {cycles} | {rss[0]:.1f} → {rss[-1]:.1f} MB "
        f"({growth:+.1f} MB) | | | grows < {TARGET_GROWTH_MB:.0f} MB "
        f"| {met(growth < TARGET_GROWTH_MB)} |",
        "",
    ]
    if not bare or len(bare) < 2:
        out += [f"The bare-client reference could not run: {why[:400]}", ""]
        return "\n".join(out)
    h, a = bare["httpx"], bare["aiohttp"]
    out += [
        f"#### The HTTP client: httpx or aiohttp ({n} conditional GETs, 4 at a time)",
        "",
        "| client | wall (median of 5) | CPU per GET | import time (best of 3) | "
        "memory added by the import |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, f in (("httpx (own transport)", h), ("aiohttp", a)):
        out.append(
            f"| {name} | {f['wall']:.3f} s | {f['cpu'] / n * 1000:.3f} ms | "
            f"{f.get('import_s', float('nan')) * 1000:.0f} ms | "
            f"{f.get('import_mb', float('nan')):.1f} MB |"
        )
    per_get = (h["cpu"] - a["cpu"]) / n * 1000
    out += [
        "",
        f"aiohttp spends {h['cpu'] / a['cpu']:.1f}× less CPU per request "
        f"({per_get:.3f} ms less per GET, {h['cpu'] - a['cpu']:.2f} s per cycle of {n}); "
        f"importing it costs {(a.get('import_s', 0) - h.get('import_s', 0)) * 1000:+.0f} ms "
        f"and {a.get('import_mb', 0) - h.get('import_mb', 0):+.1f} MB next to httpx.",
        "",
    ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=50)
    args = parser.parse_args(argv)
    WORK.mkdir(exist_ok=True)
    started = time.perf_counter()
    with (
        feed_server(args.feeds, args.entries, DEFAULT_SEED) as base,
        tempfile.TemporaryDirectory(prefix="poll-", dir=WORK) as tmp,
    ):
        log(f"serving {args.feeds} feeds at {base}")
        poll = asyncio.run(poll_cycles(base, args.feeds, args.cycles, Path(tmp) / "db.sqlite"))
        bare, why = bare_clients(base, args.feeds)
    print(report(args, poll, bare, why))
    print(
        f"Measured in {time.perf_counter() - started:.0f} s. Reproduce: `make bench` or "
        "`.venv/bin/python bench/poll.py`."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
