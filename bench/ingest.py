"""Ingest speed: ``newsletter fetch`` against 200 real feeds on a local HTTP server, next to
feedparser alone and rss2email 3.14, all measured in one run.

Run: ``.venv/bin/python bench/ingest.py`` (``make bench`` runs it). Prints a Markdown
section on stdout; progress goes to stderr.

What runs, in this order, against one local server (``bench/feeds.py``: 200 RSS 2.0 feeds
of 50 items, ETag / Last-Modified, 304 on a matching conditional GET, gzip):

1. ``newsletter fetch --config X`` COLD: the real CLI as a subprocess, fresh SQLite file;
2. the same command WARM: same database, every feed answers 304;
3. feedparser alone: one process parsing the same 200 bodies from disk, no network (the
   reference the issue names: a cold fetch must beat it);
4. rss2email 3.14 (``r2e run --no-send``), installed into its own venv under
   ``bench/.work/r2e-venv`` if missing, the same 200 feeds, cold then warm;
5. where newsletter's time goes: the stages timed in-process on the same feeds
   (``fetch_all``, ``parse_source``, ``Store.add_entries`` ...).

Wall time is measured around each subprocess; peak memory is that process's own
``ru_maxrss`` (from ``os.wait4``). The machine may be shared, so every figure is printed
next to its reference from the same run, as a ratio; newsletter's own runs are repeated
(``--repeat``) and the median is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import importlib.util
import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work"
R2E_VERSION = "3.14"
R2E_VENV = WORK / "r2e-venv"
NL_VENV = WORK / "nl-venv"

sys.path.insert(0, str(HERE))
from feeds import DEFAULT_ENTRIES, DEFAULT_FEEDS, DEFAULT_SEED, make_feeds  # noqa: E402

# feedparser alone, as a user would call it (default options), over bodies read from disk.
FEEDPARSER_ALONE = r"""
import sys, time, pathlib
started = time.perf_counter()
import feedparser
paths = sorted(pathlib.Path(sys.argv[1]).glob("*.xml"))
bodies = [p.read_bytes() for p in paths]
t = time.perf_counter()
n = sum(len(feedparser.parse(b).entries) for b in bodies)
print(f"{n} {time.perf_counter() - t:.4f} {t - started:.4f}")
"""


# Heavy imports worth naming when `fetch` loads them.
HEAVY_MODULES = ("sklearn", "scipy", "numpy", "jinja2", "feedgen", "rich", "pydantic", "sqlalchemy")

# The CLI's summary table title: the time ingest.ingest took inside the process.
FETCHED = re.compile(r"Fetched \d+ sources in ([\d.]+)s")


def log(msg: str) -> None:
    print(f"[ingest] {msg}", file=sys.stderr, flush=True)


# -- measuring a subprocess ---------------------------------------------------------------


@dataclass
class Run:
    """One measured subprocess."""

    argv: list[str]
    seconds: float
    max_rss_mb: float
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def why(self) -> str:
        tail = (self.stderr.strip() or self.stdout.strip())[-600:]
        what = "timed out" if self.timed_out else f"exit {self.returncode}"
        command = " ".join([Path(self.argv[0]).name, *self.argv[1:]])
        return f"`{command}` {what}: {tail}"


def measure(
    argv: Sequence[str],
    *,
    timeout: float = 600,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Run:
    """Run ``argv``; wall seconds and the child's own peak RSS (``os.wait4``)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        out.seek(0)
        err.seek(0)
        return Run(
            list(argv),
            seconds,
            usage.ru_maxrss / 1024,  # kB on Linux
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            timed_out.is_set(),
        )


# -- the feed server --------------------------------------------------------------------


@contextlib.contextmanager
def feed_server(feeds: int, entries: int, seed: int) -> Iterator[str]:
    """Start ``bench/feeds.py`` in its own process (its threads must not share our GIL);
    yield its base URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "feeds.py"),
            "--feeds",
            str(feeds),
            "--entries",
            str(entries),
            "--seed",
            str(seed),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"feed server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_stats(base: str, *, reset: bool = True) -> dict[str, int]:
    """Answers by HTTP status since the last reset."""
    with urllib.request.urlopen(f"{base}/stats{'?reset=1' if reset else ''}", timeout=10) as r:
        counts: dict[str, int] = json.loads(r.read())
    return counts


def fmt_stats(counts: dict[str, int]) -> str:
    return ", ".join(f"{n}×{code}" for code, n in sorted(counts.items())) or "no requests"


# -- newsletter -------------------------------------------------------------------------


def newsletter_config(path: Path, db: Path, urls: Sequence[str]) -> None:
    lines = [f'database_url = "sqlite:///{db}"', ""]
    for i, url in enumerate(urls):
        lines += ["[[sources]]", f'name = "feed-{i:03d}"', f'url = "{url}"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def count_entries(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("select count(*) from entries").fetchone()[0])


@dataclass
class Series:
    """Repeated measurements of one thing; the median is the figure."""

    runs: list[Run] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    inner: list[float] = field(default_factory=list)
    """Seconds the program itself reports for its work (newsletter's "Fetched N sources
    in X s"), one per run where it said so."""

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def rss(self) -> float:
        return statistics.median(r.max_rss_mb for r in self.runs)

    def spread(self) -> str:
        if len(self.runs) < 2:
            return ""
        xs = [r.seconds for r in self.runs]
        return f"{min(xs):.2f}–{max(xs):.2f}"


def bench_newsletter(
    python: Path, base: str, urls: Sequence[str], tmp: Path, repeat: int, expected: int
) -> tuple[Series, Series, list[str]]:
    """Cold then warm, ``repeat`` times, each on a fresh database; also returns the
    command of the last warm run (for ``paired_warm``)."""
    cold, warm = Series(), Series()
    cli = str(python.parent / "newsletter")
    argv: list[str] = []
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NEWSLETTER_CONFIG", None)
    env.pop("NEWSLETTER_DATABASE_URL", None)
    for i in range(repeat):
        d = tmp / f"newsletter-{i}"
        d.mkdir()
        config, db = d / "config.toml", d / "newsletter.sqlite"
        newsletter_config(config, db, urls)
        server_stats(base)
        argv = [cli, "fetch", "--config", str(config)]
        for series, label in ((cold, "cold"), (warm, "warm")):
            run = measure(argv, env=env, cwd=d)
            answers = server_stats(base)
            if not run.ok:
                series.error = run.why()
                log(f"newsletter {label} failed: {series.error}")
                return cold, warm, []
            stored = count_entries(db)
            series.runs.append(run)
            series.notes.append(f"{fmt_stats(answers)}; {stored} entries in the database")
            said = FETCHED.search(run.stderr)
            if said:
                series.inner.append(float(said.group(1)))
            log(
                f"newsletter {label} #{i + 1}: {run.seconds:.2f}s, {run.max_rss_mb:.0f} MB, "
                f"{fmt_stats(answers)}, {stored}/{expected} entries"
            )
    return cold, warm, argv


def paired_warm(
    base: str,
    nl_argv: Sequence[str],
    nl_warm: Series,
    r2e_argv: Sequence[str],
    r2e_warm: Series,
    n: int,
) -> None:
    """More warm runs of both, alternating newsletter and rss2email, so that both see
    the same machine (it may be shared, and its speed drifts over a minute): appended to
    their warm series, whose medians are the figures."""
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NEWSLETTER_CONFIG", None)
    env.pop("NEWSLETTER_DATABASE_URL", None)
    for i in range(n):
        for series, argv, name in (
            (nl_warm, nl_argv, "newsletter"),
            (r2e_warm, r2e_argv, "rss2email"),
        ):
            run = measure(
                argv, env=env, cwd=Path(argv[-1]).parent if name == "newsletter" else None
            )
            answers = server_stats(base)
            if not run.ok or answers.get("304") != sum(answers.values()):
                why = run.why() if not run.ok else fmt_stats(answers)
                log(f"{name} paired warm #{i + 1} skipped: {why}")
                continue
            series.runs.append(run)
            said = FETCHED.search(run.stderr)
            if said and name == "newsletter":
                series.inner.append(float(said.group(1)))
            log(f"{name} warm (paired) #{i + 1}: {run.seconds:.2f}s")


# -- feedparser alone -------------------------------------------------------------------


def bench_feedparser(bodies_dir: Path, repeat: int) -> tuple[Series, list[float]]:
    series, loops = Series(), list[float]()
    for i in range(repeat):
        run = measure([sys.executable, "-c", FEEDPARSER_ALONE, str(bodies_dir)])
        if not run.ok:
            series.error = run.why()
            return series, loops
        n, loop, _ = run.stdout.split()
        series.runs.append(run)
        loops.append(float(loop))
        series.notes.append(f"{n} entries parsed")
        log(
            f"feedparser alone #{i + 1}: {run.seconds:.2f}s (loop {float(loop):.2f}s), "
            f"{run.max_rss_mb:.0f} MB"
        )
    return series, loops


# -- rss2email --------------------------------------------------------------------------


def install_newsletter() -> Path:
    """newsletter as users get it: a regular install (not this checkout's editable one,
    whose import hook runs at every start) byte-compiled by pip, into
    ``bench/.work/nl-venv``. Its dependencies are the ones in this venv (a ``.pth`` file
    points at them), so nothing else is installed and both run the same libraries.
    Returns the venv's python."""
    python = NL_VENV / "bin" / "python"
    if not python.exists():
        log(f"creating {NL_VENV}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(NL_VENV)], check=True)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]
    (Path(site) / "newsletter-bench-deps.pth").write_text(deps + "\n", encoding="utf-8")
    log("installing newsletter (a regular install of this checkout) into the bench venv")
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--force-reinstall",
            str(ROOT),
        ],
        check=True,
        timeout=600,
    )
    return python


def ensure_r2e() -> tuple[Path | None, str]:
    """The r2e executable in its own venv (created if missing), or None and why not."""
    r2e = R2E_VENV / "bin" / "r2e"
    python = R2E_VENV / "bin" / "python"
    if r2e.exists():
        probe = subprocess.run([str(r2e), "--version"], capture_output=True, text=True)
        if probe.returncode == 0 and R2E_VERSION in probe.stdout + probe.stderr:
            return r2e, (probe.stdout + probe.stderr).strip()
    log(f"installing rss2email {R2E_VERSION} into {R2E_VENV}")
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(R2E_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", f"rss2email=={R2E_VERSION}"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip()[-500:]
            return None, f"`{' '.join(step)}` failed: {tail}"
    probe = subprocess.run([str(r2e), "--version"], capture_output=True, text=True)
    if probe.returncode != 0:
        return None, f"r2e --version failed: {probe.stderr.strip()[-300:]}"
    return r2e, (probe.stdout + probe.stderr).strip()


def bench_r2e(
    base: str, urls: Sequence[str], tmp: Path, repeat: int
) -> tuple[Series, Series, str, list[str]]:
    """Cold then warm ``repeat`` times; also returns the warm command (``paired_warm``)."""
    cold, warm = Series(), Series()
    r2e, version = ensure_r2e()
    if r2e is None:
        cold.error = warm.error = f"rss2email could not be installed: {version}"
        return cold, warm, version, []
    d = tmp / "r2e"
    d.mkdir()
    cfg, data = d / "rss2email.cfg", d / "rss2email.json"
    base_argv = [str(r2e), "-c", str(cfg), "-d", str(data)]
    opml = d / "feeds.opml"
    outlines = "".join(f'<outline text="feed-{i:03d}" xmlUrl="{u}"/>\n' for i, u in enumerate(urls))
    opml.write_text(
        f'<?xml version="1.0"?>\n<opml version="1.0"><head><title>bench</title></head><body>\n'
        f"{outlines}</body></opml>\n",
        encoding="utf-8",
    )
    for step in (["new", "bench@example.org"], ["opmlimport", str(opml)]):
        done = measure(base_argv + step, cwd=d)
        if not done.ok:
            cold.error = warm.error = f"rss2email setup failed: {done.why()}"
            return cold, warm, version, []
    listed = measure([*base_argv, "list"], cwd=d)
    n_feeds = sum(1 for line in listed.stdout.splitlines() if "127.0.0.1" in line)
    server_stats(base)
    runs = [(cold, "cold")] + [(warm, "warm")] * repeat
    for series, label in runs:
        run = measure([*base_argv, "run", "--no-send"], cwd=d, timeout=900)
        answers = server_stats(base)
        if not run.ok:
            series.error = f"rss2email {label} run failed: {run.why()}"
            log(series.error)
            return cold, warm, version, []
        seen = sum(len(f.get("seen") or {}) for f in json.loads(data.read_text())["feeds"])
        series.runs.append(run)
        series.notes.append(f"{fmt_stats(answers)}; {seen} entries seen ({n_feeds} feeds)")
        log(
            f"rss2email {label}: {run.seconds:.2f}s, {run.max_rss_mb:.0f} MB, "
            f"{fmt_stats(answers)}, {seen} seen"
        )
    return cold, warm, version, [*base_argv, "run", "--no-send"]


# -- where newsletter's time goes -------------------------------------------------------


def stage_breakdown(
    python: Path, base: str, urls: Sequence[str], tmp: Path
) -> list[tuple[str, float, str]]:
    """Each stage of ``newsletter fetch`` timed alone, in this process, on the same feeds."""
    fetch_imports = "import newsletter.cli, newsletter.ingest, newsletter.fetchstate"
    probe = measure(
        [str(python), "-c", f"{fetch_imports}; import sys; print(' '.join(sorted(sys.modules)))"],
        cwd=tmp,  # not the checkout: `-c` would import newsletter from the current folder
    )
    loaded = set(probe.stdout.split())
    heavy = [m for m in HEAVY_MODULES if m in loaded]
    startup = [
        ("start-up: `python -c pass`", "pass", "the interpreter alone"),
        (
            "start-up: `import newsletter.cli`",
            "import newsletter.cli",
            "what every command pays",
        ),
        (
            f"start-up: `{fetch_imports}`",
            fetch_imports,
            "what `fetch` pays before its first request; loads "
            + (", ".join(heavy) if heavy else "none of " + ", ".join(HEAVY_MODULES))
            + " (SQLAlchemy and the parsers load only when there are entries to store)",
        ),
    ]
    if "sklearn" in loaded:
        startup.append(
            (
                "… of which `import sklearn.feature_extraction.text` alone",
                "import sklearn.feature_extraction.text",
                "pulled in by fetch's imports, never used by it",
            )
        )
    # Start-up is the least noisy figure there is: the best of three is the honest one.
    startup_rows = [
        (
            f"{label} (a process, best of 3)",
            min(measure([str(python), "-c", code], cwd=tmp).seconds for _ in range(3)),
            note,
        )
        for label, code, note in startup
    ]

    from newsletter.sources.fetch import FetchRequest, FetchSettings, fetch_all
    from newsletter.sources.parse import parse_source
    from newsletter.store.database import Store

    settings = FetchSettings()
    names = [f"feed-{i:03d}" for i in range(len(urls))]
    requests = [FetchRequest(n, u) for n, u in zip(names, urls, strict=True)]

    t = time.perf_counter()
    results = asyncio.run(fetch_all(requests, settings))
    fetch_s = time.perf_counter() - t
    ok = [r for r in results if r.ok]

    t = time.perf_counter()
    parsed = [
        parse_source(
            r.body, source=r.request.source, url=r.request.url, content_type=r.content_type
        )
        for r in ok
    ]
    parse_s = time.perf_counter() - t
    n_entries = sum(len(p.entries) for p in parsed)
    tiers = sorted({p.parser for p in parsed})

    import fastfeedparser

    t = time.perf_counter()
    for r in ok:
        fastfeedparser.parse(r.body)
    ffp_s = time.perf_counter() - t

    now = datetime.now(UTC)
    store = Store(f"sqlite:///{tmp / 'stages.sqlite'}")
    try:
        t = time.perf_counter()
        for name, u in zip(names, urls, strict=True):
            store.ensure_source(name, u)
        ensure_s = time.perf_counter() - t
        t = time.perf_counter()
        new = sum(len(store.add_entries(p.entries, now=now)) for p in parsed)
        add_s = time.perf_counter() - t
        t = time.perf_counter()
        for r in ok:
            store.update_source(
                r.request.source,
                etag=r.etag,
                last_modified=r.last_modified,
                status="ok",
                last_fetched=now,
                last_ok=now,
            )
        update_s = time.perf_counter() - t
    finally:
        store.close()

    warm_requests = [
        FetchRequest(r.request.source, r.request.url, r.etag, r.last_modified) for r in ok
    ]
    t = time.perf_counter()
    warm = asyncio.run(fetch_all(warm_requests, settings))
    warm_s = time.perf_counter() - t
    n304 = sum(1 for r in warm if r.status == "not_modified")

    # The warm run's bookkeeping: states read and 304 outcomes written with sqlite3.
    from newsletter.sources.fetchstate import LazyStore

    t = time.perf_counter()
    with LazyStore(f"sqlite:///{tmp / 'stages.sqlite'}") as lazy:
        lazy.ensure_sources(zip(names, urls, strict=True))
        lazy.record_fetch(
            [], {r.request.source: {"status": "ok", "last_fetched": now} for r in warm}, now=now
        )
        lazy_sqlalchemy = lazy.opened_store
    lazy_s = time.perf_counter() - t

    # Reference for fetch_all: the standard library, one request after another.
    t = time.perf_counter()
    got = 0
    for u in urls:
        req = urllib.request.Request(u, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read()
            got += len(gzip.decompress(data) if r.headers.get("Content-Encoding") else data)
    urllib_s = time.perf_counter() - t

    per = f"concurrency {settings.concurrency}, {settings.per_host} per host"
    n = len(urls)
    return [
        *startup_rows,
        (
            f"HTTP fetch: `fetch_all`, {n} GETs",
            fetch_s,
            f"{len(ok)} bodies, {sum(len(r.body) for r in ok) / 1e6:.1f} MB decoded; {per}",
        ),
        (
            f"reference: `urllib.request` GET + gunzip × {n}, one after another",
            urllib_s,
            f"{got / 1e6:.1f} MB; what the HTTP part costs without httpx and asyncio",
        ),
        (
            f"parse: `parse_source` × {len(ok)}, one thread",
            parse_s,
            f"{n_entries} entries, tier {', '.join(tiers)}; includes normalisation "
            "(`normalize.make_entry`: nh3 sanitising, HTML to text, canonical links)",
        ),
        (
            f"… of which `fastfeedparser.parse` alone × {len(ok)}",
            ffp_s,
            "the XML parsing proper; the rest of `parse_source` is normalisation",
        ),
        (f"store: `Store.ensure_source` × {n}", ensure_s, "one transaction each"),
        (
            f"store: `Store.add_entries` × {len(parsed)}",
            add_s,
            f"{new} new entries, fresh SQLite (WAL)",
        ),
        (
            f"store: `Store.update_source` × {len(ok)}",
            update_s,
            "validators and status, one transaction each",
        ),
        (f"HTTP fetch, warm: `fetch_all`, {len(ok)} conditional GETs", warm_s, f"{n304}×304"),
        (
            f"store, warm: `LazyStore` reads {n} states, records {len(warm)} outcomes",
            lazy_s,
            "sqlite3, one transaction"
            + ("; SQLAlchemy was opened (unexpected)" if lazy_sqlalchemy else "; no SQLAlchemy"),
        ),
    ]


# -- report -----------------------------------------------------------------------------


def cell(series: Series) -> tuple[str, str]:
    if series.error or not series.runs:
        return "n/a", "n/a"
    return f"{series.seconds:.2f}", f"{series.rss:.0f}"


def ratio_row(
    label: str, num: Series | float | None, den: Series | float | None, target: str, ok: object
) -> str:
    def value(x: Series | float | None) -> float | None:
        if isinstance(x, Series):
            return x.seconds if x.runs and not x.error else None
        return x

    a, b = value(num), value(den)
    if a is None or b is None or b == 0:
        return f"| {label} | n/a | {target} | not measured |"
    r = a / b
    met = "yes" if ok(r) else "**no**"  # type: ignore[operator]
    return f"| {label} | {r:.2f}× | {target} | {met} |"


def cli_split(cold: Series, warm: Series) -> list[str]:
    rows = []
    for label, s in (("cold", cold), ("warm", warm)):
        if s.error or not s.runs or len(s.inner) != len(s.runs):
            continue
        rest = statistics.median(r.seconds - x for r, x in zip(s.runs, s.inner, strict=True))
        inner = statistics.median(s.inner)
        rows.append(f"| `newsletter fetch`, {label} | {s.seconds:.2f} | {inner:.2f} | {rest:.2f} |")
    return rows


def report(
    args: argparse.Namespace,
    body_mb: float,
    nl: tuple[Series, Series],
    fp: Series,
    fp_loops: list[float],
    r2e: tuple[Series, Series],
    r2e_version: str,
    stages: list[tuple[str, float, str]] | None,
    elapsed: float,
) -> str:
    nl_cold, nl_warm = nl
    r2e_cold, r2e_warm = r2e
    n_entries = args.feeds * args.entries
    rep = f"median of {args.repeat}" if args.repeat > 1 else "one run"
    out = [
        f"### Ingest: {args.feeds} feeds × {args.entries} entries from a local HTTP server",
        "",
        f"{args.feeds} generated RSS 2.0 feeds (seed {args.seed}; {n_entries} items, "
        f"{body_mb:.1f} MB of XML; each item has title, link, guid, pubDate, ~600 characters "
        "of HTML description, categories) served by `bench/feeds.py` on 127.0.0.1 "
        "(threaded `http.server`, HTTP/1.1 keep-alive, gzip, ETag + Last-Modified, 304 on a "
        "matching conditional GET). Every command below is a separate process; wall time "
        "around it, peak memory is that process's own max RSS. "
        f"newsletter cold and feedparser figures: {rep}; rss2email cold: one run (25 s); "
        f"warm figures: the median of {args.repeat} runs plus {args.paired} more of each, "
        "alternating newsletter and rss2email so both see the same machine. newsletter "
        "runs from a regular install of this checkout in "
        "`bench/.work/nl-venv` (byte-compiled by pip, as users get it), on the same "
        "dependencies as `.venv`.",
        "",
        "| run | seconds | peak RSS (MB) | checked |",
        "| --- | ---: | ---: | --- |",
    ]

    def row(label: str, s: Series, extra: str = "") -> None:
        secs, rss = cell(s)
        if s.error:
            note = f"failed: {s.error[:300]}"
        else:
            note = "; ".join(dict.fromkeys(s.notes)) if len(set(s.notes)) == 1 else s.notes[-1]
            if s.spread():
                note = f"range {s.spread()} s; {note}"
        out.append(f"| {label} | {secs} | {rss} | {note}{extra} |")

    row("`newsletter fetch`, cold (fresh database)", nl_cold)
    row("`newsletter fetch`, warm (same database)", nl_warm)
    loops = f"; parse loop alone {statistics.median(fp_loops):.2f} s" if fp_loops else ""
    row(
        f"feedparser alone: `feedparser.parse` × {args.feeds} bodies, one process, no network",
        fp,
        loops,
    )
    row(f"rss2email {R2E_VERSION} `r2e run --no-send`, cold", r2e_cold)
    row(f"rss2email {R2E_VERSION} `r2e run --no-send`, warm", r2e_warm)
    fp_loop = statistics.median(fp_loops) if fp_loops else None
    out += [
        "",
        "| ratio (same run) | value | target | met |",
        "| --- | ---: | --- | --- |",
        ratio_row("rss2email cold / newsletter cold", r2e_cold, nl_cold, "≥ 8×", lambda r: r >= 8),
        ratio_row(
            "feedparser alone (process) / newsletter cold", fp, nl_cold, "> 1×", lambda r: r > 1
        ),
        ratio_row(
            "feedparser alone (parse loop only) / newsletter cold",
            fp_loop,
            nl_cold,
            "> 1× (stricter)",
            lambda r: r > 1,
        ),
        ratio_row("rss2email warm / newsletter warm", r2e_warm, nl_warm, "≥ 2×", lambda r: r >= 2),
        "",
    ]
    if r2e_cold.error:
        out += [f"**rss2email was not measured**: {r2e_cold.error[:500]}", ""]
    elif r2e_version:
        out += [
            f"rss2email: `{r2e_version.splitlines()[0]}` in its own venv "
            f"(`bench/.work/r2e-venv`), fetching feeds one after another as it does.",
            "",
        ]
    split = cli_split(nl_cold, nl_warm)
    if split:
        out += [
            "Inside the CLI, from the same runs (medians): the time `ingest.ingest` took, "
            'as the CLI\'s summary says ("Fetched N sources in X s"), and the rest of the '
            "process (interpreter start, imports, config, opening the database, the "
            "summary table, exit).",
            "",
            "| run | wall s | ingest s | rest s |",
            "| --- | ---: | ---: | ---: |",
            *split,
            "",
        ]
    if stages:
        out += [
            "Where newsletter's time goes: each stage timed alone, in-process, on the same "
            "feeds and server (the CLI parses in two worker processes while downloads "
            "continue and stores in batches as parsing finishes, so the stages do not add "
            "up to its wall time).",
            "",
            "| stage | seconds | share of cold CLI | notes |",
            "| --- | ---: | ---: | --- |",
        ]
        total = nl_cold.seconds if nl_cold.runs and not nl_cold.error else None
        for label, secs, note in stages:
            share = f"{secs / total:.0%}" if total else "n/a"
            out.append(f"| {label} | {secs:.3f} | {share} | {note} |")
        out.append("")
    if importlib.util.find_spec("sniffio") is None:
        out += [
            "Note: `sniffio` is not installed in this venv, so httpcore runs a failing "
            "`import sniffio` (a full `sys.path` search) several times per request "
            "(`httpcore/_synchronization.py`, `current_async_library`).",
            "",
        ]
    out.append(
        f"All of the above measured in {elapsed:.0f} s, {platform.python_implementation()} "
        f"{platform.python_version()}. Reproduce: `make bench` or "
        "`.venv/bin/python bench/ingest.py`."
    )
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=DEFAULT_FEEDS)
    parser.add_argument("--entries", type=int, default=DEFAULT_ENTRIES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of newsletter and feedparser alone (median kept)",
    )
    parser.add_argument("--no-r2e", action="store_true", help="skip rss2email")
    parser.add_argument(
        "--paired",
        type=int,
        default=7,
        help="extra warm runs of newsletter and rss2email, alternating (0: none)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()

    WORK.mkdir(exist_ok=True)
    python = install_newsletter()
    log(f"generating {args.feeds} feeds × {args.entries} entries")
    bodies = make_feeds(args.feeds, args.entries, args.seed)
    body_mb = sum(len(b) for b in bodies) / 1e6
    with tempfile.TemporaryDirectory(prefix="ingest-", dir=WORK) as tmp_name:
        tmp = Path(tmp_name)
        bodies_dir = tmp / "bodies"
        bodies_dir.mkdir()
        for i, body in enumerate(bodies):
            (bodies_dir / f"{i:03d}.xml").write_bytes(body)
        del bodies
        with feed_server(args.feeds, args.entries, args.seed) as base:
            urls = [f"{base}/feeds/{i}.xml" for i in range(args.feeds)]
            log(f"serving at {base}")
            *nl_pair, nl_argv = bench_newsletter(
                python, base, urls, tmp, args.repeat, args.feeds * args.entries
            )
            nl = (nl_pair[0], nl_pair[1])
            fp, fp_loops = bench_feedparser(bodies_dir, args.repeat)
            if args.no_r2e:
                skipped = Series(error="skipped (--no-r2e)")
                r2e, r2e_version = (skipped, skipped), ""
            else:
                *pair, r2e_version, r2e_argv = bench_r2e(base, urls, tmp, args.repeat)
                r2e = (pair[0], pair[1])
                if nl_argv and r2e_argv and args.paired:
                    paired_warm(base, nl_argv, nl[1], r2e_argv, r2e[1], args.paired)
            stages: list[tuple[str, float, str]] | None
            try:
                stages = stage_breakdown(python, base, urls, tmp)
            except Exception as exc:  # the breakdown must not cost the headline figures
                log(f"stage breakdown failed: {type(exc).__name__}: {exc}")
                stages = None
    print(
        report(
            args, body_mb, nl, fp, fp_loops, r2e, r2e_version, stages, time.perf_counter() - started
        )
    )
    failed = nl[0].error or nl[1].error
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
