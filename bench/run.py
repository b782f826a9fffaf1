"""Run every benchmark and write ``BENCHMARKS.md`` (what ``make bench`` does).

Run: ``.venv/bin/python bench/run.py [--only NAME ...] [--output BENCHMARKS.md]``

Each bench script that exists among ``BENCHES`` runs as its own subprocess with this
interpreter (the project's venv), one after another so they do not compete for the CPU.
Its stdout goes into ``BENCHMARKS.md`` verbatim: as Markdown when it printed Markdown (a
heading or a table), in a code block otherwise. A missing script, a failure or a timeout
is noted in its section with the end of its stderr; the others still run.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# (script, title, generous timeout in seconds, arguments). Order: fetching first.
BENCHES: tuple[tuple[str, str, float, tuple[str, ...]], ...] = (
    ("ingest.py", "Ingest: fetch, parse and store", 900, ()),
    ("poll.py", "Daemon poll: many feeds, all unchanged", 600, ()),
    # The issue asks for the grouping time curve (100, 1k, 10k) and robustness figures.
    ("quality.py", "Digest quality", 600, ("--curve", "--subsamples", "4")),
    ("dedupe_quality.py", "Duplicate merging: quality and speed", 600, ()),
    ("send.py", "Sending", 600, ()),
    # Issue 12: 100,000 subscribers on PostgreSQL sent by 1, 2 and 4 processes.
    ("scale.py", "Several senders on one PostgreSQL edition", 2400, ()),
    # Issue 11, findings 1 and 2: a 100k-item feed, and text functions on hostile text.
    ("adversarial.py", "Hostile input", 2400, ()),
    # Issue 9, point 10: wall time of the one-off digest and of `send --dry-run`.
    ("startup.py", "Start-up", 600, ()),
)


@dataclass
class Outcome:
    script: str
    title: str
    status: str  # ok, missing, failed, timeout
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run_bench(script: str, title: str, timeout: float, args: tuple[str, ...] = ()) -> Outcome:
    path = HERE / script
    if not path.exists():
        return Outcome(script, title, "missing")
    env = dict(os.environ)
    # Benches import the package; make it importable even if it is not pip-installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(path), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    # Pass its progress (stderr) through as it comes, keeping a copy for the report.
    err_lines: list[str] = []

    def relay() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            sys.stderr.write(f"  {line}")
            sys.stderr.flush()

    out_chunks: list[str] = []

    def collect() -> None:
        assert proc.stdout is not None
        out_chunks.append(proc.stdout.read())

    threads = [threading.Thread(target=f, daemon=True) for f in (relay, collect)]
    for t in threads:
        t.start()
    try:
        proc.wait(timeout=timeout)
        status = "ok" if proc.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        status = "timeout"
    for t in threads:
        t.join(10)
    return Outcome(
        script,
        title,
        status,
        time.perf_counter() - started,
        "".join(out_chunks),
        "".join(err_lines),
        proc.returncode,
    )


# -- the machine ------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip(chr(34))}, Linux {platform.release()}"
    except OSError:
        pass
    return platform.platform()


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def git_revision() -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def header(load_before: str) -> list[str]:
    return [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run.py`); do not edit by hand. Every figure is "
        "measured in the same run as its reference and reported next to it, usually as a "
        "ratio: this machine may be shared, so absolute seconds move from run to run while "
        "the ratios hold better.",
        "",
        "| machine | |",
        "| --- | --- |",
        f"| CPU | {cpu_model()} |",
        f"| cores | {os.cpu_count()} |",
        f"| memory | {memory()} |",
        f"| Python | {platform.python_implementation()} {platform.python_version()} |",
        f"| OS | {os_name()} |",
        f"| date | {datetime.now(UTC):%Y-%m-%d %H:%M} UTC |",
        f"| commit | `{git_revision()}` |",
        f"| load average before (1 / 5 / 15 min) | {load_before} |",
        "",
        "Reproduce: `make bench` (installs the project into `.venv` if needed, then runs "
        "`.venv/bin/python bench/run.py`). One bench alone: `.venv/bin/python bench/<name>.py`.",
        "",
    ]


def looks_like_markdown(text: str) -> bool:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return any(line.startswith("#") for line in lines[:3]) or any(
        line.startswith("|") and line.endswith("|") for line in lines
    )


def section(o: Outcome) -> list[str]:
    out = [f"## {o.title} (`bench/{o.script}`)", ""]
    if o.status == "missing":
        return [*out, f"Not run: `bench/{o.script}` does not exist yet.", ""]
    if o.status != "ok":
        why = "timed out" if o.status == "timeout" else f"exited with status {o.returncode}"
        out += [f"**This bench {why}** after {o.seconds:.0f} s. End of its stderr:", ""]
        out += ["```", o.stderr.strip()[-2000:] or "(nothing)", "```", ""]
        if o.stdout.strip():
            out += ["What it printed before that:", ""]
    else:
        out += [f"_Ran in {o.seconds:.0f} s._", ""]
    body = o.stdout.strip()
    if not body:
        return out if o.status != "ok" else [*out, "(it printed nothing)", ""]
    if looks_like_markdown(body):
        # Demote its headings below this section's level.
        lines = [f"#{line}" if line.startswith("#") else line for line in body.splitlines()]
        out += [*lines, ""]
    else:
        out += ["```", body, "```", ""]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="run only this script")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    load_before = load_average()
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    for script, title, timeout, args_ in BENCHES:
        if args.only and script not in args.only and script.removesuffix(".py") not in args.only:
            continue
        log(f"{script} ...")
        o = run_bench(script, title, timeout, args_)
        log(f"{script}: {o.status} in {o.seconds:.0f}s")
        outcomes.append(o)
    lines = header(load_before)
    ran = ", ".join(f"`{o.script}` {o.status}" for o in outcomes)
    lines += [f"Benches: {ran}. Total {time.perf_counter() - started:.0f} s.", ""]
    for o in outcomes:
        lines += section(o)
    text = "\n".join(lines).rstrip() + "\n"
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.output)
    log(f"wrote {args.output}")
    print(text)
    bad = [o.script for o in outcomes if o.status not in ("ok", "missing")]
    if bad:
        # Noted in BENCHMARKS.md; the other benches' figures are still worth keeping.
        log(f"did not complete: {', '.join(bad)} (see their sections)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
