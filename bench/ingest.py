"""One-shot fetch: ``newsletter fetch`` cold and warm against 200 local feeds, next to
rss2email 3.14 on the same feeds, in the same run; and where newsletter's memory goes.

Run: ``.venv/bin/python bench/ingest.py [--feeds 200] [--entries 50] [--repeat 3]``
(``make bench`` runs it). Prints a Markdown section on stdout; progress goes to stderr.

- Feeds: ``bench/feeds.py`` (its own process, 127.0.0.1, a port the kernel picked):
  RSS 2.0, gzip, ``ETag`` / ``Last-Modified``, 304 on a matching conditional GET.
- newsletter: the real CLI, ``newsletter fetch --config X``, from a regular install of
  this checkout in ``bench/.work/nl-venv`` (byte-compiled, as users get it).
- rss2email 3.14: ``r2e run --no-send``, installed into ``bench/.work/r2e-venv`` on first
  use (``pip install rss2email==3.14``); each cold run on a fresh data file made by
  ``r2e new`` and ``r2e opmlimport`` (not timed).
- Cold: ``--repeat`` rounds, each a fresh database for newsletter and fresh data for
  rss2email, the two alternating so both see the same machine; the medians are the
  figures. Warm: ``--warm`` more rounds of each on the last cold run's state (every feed
  answers 304), alternating too.
- Memory: each run's peak RSS (see ``harness.measure``), and what newsletter's imports
  alone hold (one process per step).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feeds import DEFAULT_ENTRIES, DEFAULT_FEEDS, DEFAULT_SEED
from harness import (
    WORK,
    Run,
    Series,
    feed_server,
    fmt_stats,
    install_newsletter,
    log,
    measure,
    server_stats,
    venv_with,
)

R2E_VERSION = "3.14"
TARGET_COLD = 8.0  # rss2email cold / newsletter cold, at least
TARGET_MEMORY = 2.0  # newsletter's peak / rss2email's, at most

# What newsletter holds before it fetches anything, step by step (one process each).
IMPORT_STEPS: tuple[tuple[str, str], ...] = (
    ("the interpreter alone", "pass"),
    ("+ `newsletter.cli` (click)", "import newsletter.cli"),
    ("+ `newsletter.config` (pydantic, the settings models)", "import newsletter.config"),
    ("+ `newsletter.store.database` (SQLAlchemy)", "import newsletter.store.database"),
    (
        "+ `newsletter.services.ingest`, `newsletter.sources.fetch` (httpx): all that "
        "`fetch` imports",
        "import newsletter.cli.fetch, newsletter.services.ingest",
    ),
)
PARSERS = (
    "a parse worker's stack alone: `newsletter.sources.parse`",
    "import newsletter.sources.parse",
)
RSS_PROBE = (
    "; import os; print(int(open('/proc/self/statm').read().split()[1])"
    " * os.sysconf('SC_PAGE_SIZE') / 2**20)"
)


def newsletter_config(path: Path, db: Path, urls: Sequence[str]) -> None:
    lines = [f'database_url = "sqlite:///{db}"', ""]
    for i, url in enumerate(urls):
        lines += ["[[sources]]", f'name = "feed-{i:03d}"', f'url = "{url}"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def stored_entries(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from entries").fetchone()[0])


def r2e_seen(data: Path) -> int:
    return sum(len(f.get("seen") or {}) for f in json.loads(data.read_text())["feeds"])


class Tool:
    """One program under test: how to make fresh state, and the command to run."""

    def __init__(self, name: str, tmp: Path, urls: Sequence[str]) -> None:
        self.name, self.tmp, self.urls = name, tmp, urls
        self.argv: list[str] = []
        self.count = lambda: 0
        self.cwd: Path | None = None

    def fresh(self, i: int) -> str | None:
        raise NotImplementedError


class Newsletter(Tool):
    def __init__(self, python: Path, tmp: Path, urls: Sequence[str]) -> None:
        super().__init__("newsletter", tmp, urls)
        self.cli = str(python.parent / "newsletter")

    def fresh(self, i: int) -> str | None:
        d = self.tmp / f"newsletter-{i}"
        d.mkdir()
        config, db = d / "config.toml", d / "newsletter.sqlite"
        newsletter_config(config, db, self.urls)
        self.argv, self.cwd = [self.cli, "fetch", "--config", str(config)], d
        self.count = lambda: stored_entries(db)
        return None


class Rss2email(Tool):
    def __init__(self, r2e: Path, tmp: Path, urls: Sequence[str]) -> None:
        super().__init__("rss2email", tmp, urls)
        self.r2e = str(r2e)

    def fresh(self, i: int) -> str | None:
        d = self.tmp / f"r2e-{i}"
        d.mkdir()
        cfg, data, opml = d / "rss2email.cfg", d / "rss2email.json", d / "feeds.opml"
        outlines = "".join(
            f'<outline text="feed-{n:03d}" xmlUrl="{u}"/>\n' for n, u in enumerate(self.urls)
        )
        opml.write_text(
            '<?xml version="1.0"?>\n<opml version="1.0"><head><title>bench</title></head>'
            f"<body>\n{outlines}</body></opml>\n",
            encoding="utf-8",
        )
        base = [self.r2e, "-c", str(cfg), "-d", str(data)]
        for step in (["new", "bench@example.org"], ["opmlimport", str(opml)]):
            done = measure(base + step, cwd=d)
            if not done.ok:
                return f"rss2email set-up failed: {done.why()}"
        self.argv, self.cwd = [*base, "run", "--no-send"], d
        self.count = lambda: r2e_seen(data)
        return None


def run_once(tool: Tool, series: Series, base: str, label: str, expect: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    server_stats(base)
    run: Run = measure(tool.argv, env={**env, "NO_COLOR": "1"}, cwd=tool.cwd, timeout=900)
    answers = server_stats(base)
    if not run.ok:
        series.error = run.why()
        log(f"{tool.name} {label} failed: {series.error}")
        return
    if set(answers) != {expect}:
        series.notes.append(f"unexpected answers: {fmt_stats(answers)}")
    series.runs.append(run)
    entries = tool.count()
    series.notes.append(f"{fmt_stats(answers)}; {entries} entries stored or seen")
    log(f"{tool.name} {label}: {run.seconds:.2f}s, {run.max_rss_mb:.0f} MB, {fmt_stats(answers)}")


def import_memory(python: Path, tmp: Path) -> list[tuple[str, float]]:
    """Resident MB after each step of newsletter's imports (a process per step)."""
    rows, code = [], ""
    for label, step in IMPORT_STEPS:
        code = f"{code}; {step}" if code else step
        done = measure([str(python), "-c", code + RSS_PROBE], cwd=tmp)
        if done.ok:
            rows.append((label, float(done.stdout.split()[-1])))
    done = measure([str(python), "-c", PARSERS[1] + RSS_PROBE], cwd=tmp)
    if done.ok:
        rows.append((PARSERS[0], float(done.stdout.split()[-1])))
    return rows


def report(
    args: argparse.Namespace,
    series: dict[str, Series],
    imports: list[tuple[str, float]],
    r2e_why: str,
    body_mb: float,
) -> str:
    nc, nw, rc, rw = (series[k] for k in ("nl-cold", "nl-warm", "r2e-cold", "r2e-warm"))
    out = [
        f"### One-shot fetch: {args.feeds} feeds × {args.entries} entries from a local server",
        "",
        f"{args.feeds} generated RSS 2.0 feeds ({body_mb:.1f} MB of XML, gzip on the wire) "
        "served by `bench/feeds.py` on 127.0.0.1. Each command is its own process: wall "
        "time around it, peak RSS its own. Cold: a fresh database (rss2email: a fresh data "
        f"file), median of {len(nc.runs)} newsletter and {len(rc.runs)} rss2email runs, "
        "alternating. Warm: the same state again, every feed answering 304, median of "
        f"{len(nw.runs)} and {len(rw.runs)} runs, alternating.",
        "",
        "| run | seconds (median) | range | peak RSS, MB (median) | checked |",
        "| --- | ---: | --- | ---: | --- |",
    ]
    for label, s in (
        ("`newsletter fetch`, cold", nc),
        (f"rss2email {R2E_VERSION} `r2e run --no-send`, cold", rc),
        ("`newsletter fetch`, warm", nw),
        (f"rss2email {R2E_VERSION} `r2e run --no-send`, warm", rw),
    ):
        if not s.measured:
            out.append(f"| {label} | n/a | | n/a | not measured: {(s.error or '')[:300]} |")
            continue
        note = "; ".join(dict.fromkeys(s.notes))
        out.append(f"| {label} | {s.seconds:.2f} | {s.spread()} | {s.rss:.0f} | {note} |")
    out += [
        "",
        "| ratio (same run) | value | target | met |",
        "| --- | ---: | --- | --- |",
    ]

    def ratio(label: str, a: Series, b: Series, key: str, target: str, ok: float | None) -> None:
        if not (a.measured and b.measured):
            out.append(f"| {label} | n/a | {target} | not measured |")
            return
        value = getattr(a, key) / getattr(b, key)
        met = (
            ""
            if ok is None
            else ("yes" if (value >= ok if key == "seconds" else value <= ok) else "**no**")
        )
        out.append(f"| {label} | {value:.2f}× | {target} | {met} |")

    ratio(
        "rss2email cold / newsletter cold, time",
        rc,
        nc,
        "seconds",
        f"≥ {TARGET_COLD:g}×",
        TARGET_COLD,
    )
    ratio(
        "newsletter cold / rss2email cold, peak RSS",
        nc,
        rc,
        "rss",
        f"≤ {TARGET_MEMORY:g}×",
        TARGET_MEMORY,
    )
    ratio("rss2email warm / newsletter warm, time", rw, nw, "seconds", "none", None)
    ratio("newsletter warm / rss2email warm, peak RSS", nw, rw, "rss", "none", None)
    out.append("")
    if r2e_why:
        out += [f"**rss2email was not measured**: {r2e_why[:500]}", ""]
    if imports:
        out += [
            "Where newsletter's memory goes: resident memory after its imports alone, one "
            "process per step (each adds to the one before), next to the cold peak.",
            "",
            "| step | resident MB |",
            "| --- | ---: |",
            *(f"| {label} | {mb:.1f} |" for label, mb in imports),
        ]
        fetch_imports = (
            imports[len(IMPORT_STEPS) - 1][1] if len(imports) >= len(IMPORT_STEPS) else None
        )
        if nc.measured and fetch_imports is not None:
            out.append(
                f"| `newsletter fetch`, cold: peak beyond its imports (bodies, entries, "
                f"writes) | {nc.rss - fetch_imports:.1f} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=DEFAULT_FEEDS)
    parser.add_argument("--entries", type=int, default=DEFAULT_ENTRIES)
    parser.add_argument("--repeat", type=int, default=3, help="cold runs of each (median)")
    parser.add_argument("--warm", type=int, default=5, help="warm runs of each (median)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    WORK.mkdir(exist_ok=True)
    python = install_newsletter()
    r2e_python, r2e_why = venv_with("r2e-venv", [f"rss2email=={R2E_VERSION}"], project_deps=False)
    series = {k: Series() for k in ("nl-cold", "nl-warm", "r2e-cold", "r2e-warm")}
    from feeds import make_feeds

    body_mb = sum(len(b) for b in make_feeds(args.feeds, args.entries, DEFAULT_SEED)) / 1e6
    with (
        tempfile.TemporaryDirectory(prefix="ingest-", dir=WORK) as tmp_name,
        feed_server(args.feeds, args.entries, DEFAULT_SEED) as base,
    ):
        tmp = Path(tmp_name)
        urls = [f"{base}/feeds/{i}.xml" for i in range(args.feeds)]
        log(f"serving at {base}")
        tools: list[tuple[Tool, str]] = [(Newsletter(python, tmp, urls), "nl")]
        if r2e_python is not None:
            tools.append((Rss2email(r2e_python.parent / "r2e", tmp, urls), "r2e"))
        for i in range(args.repeat):
            for tool, key in tools:
                why = tool.fresh(i)
                if why:
                    series[f"{key}-cold"].error = series[f"{key}-warm"].error = why
                    continue
                run_once(tool, series[f"{key}-cold"], base, f"cold #{i + 1}", "200")
        for i in range(args.warm):
            for tool, key in tools:
                if not series[f"{key}-cold"].error:
                    run_once(tool, series[f"{key}-warm"], base, f"warm #{i + 1}", "304")
        imports = import_memory(python, tmp)
    print(report(args, series, imports, r2e_why, body_mb))
    print(
        f"Measured in {time.perf_counter() - started:.0f} s. Reproduce: `make bench` or "
        "`.venv/bin/python bench/ingest.py`."
    )
    return 1 if not series["nl-cold"].measured else 0


if __name__ == "__main__":
    sys.exit(main())
