"""Start-up: wall time of two short commands, next to the interpreter's own start-up.

Run: ``.venv/bin/python bench/startup.py [--repeat 9] [--python PATH]`` (``make bench``
runs it). Prints a Markdown section on stdout; progress goes to stderr.

What is measured, each as its own process, wall time around it (issue 9, point 10):

1. ``newsletter digest config/feeds/*`` -- the one-off digest of the demo sources (the
   four sample feeds as paths: read, parsed, stored in an in-memory database, merged,
   grouped, ranked, written as Markdown to stdout); target 1.0 s.
2. ``newsletter send --config X --dry-run`` -- ``config/demo.toml`` with its database,
   mail folder and outputs in a scratch folder, after ``newsletter fetch`` and
   ``newsletter subscribers import`` (not timed): it builds the edition's digest and one
   sample message and sends nothing; target 0.5 s.
3. References from the same run: ``python -c pass`` (the interpreter alone) and
   ``python -c "import newsletter.cli"`` (what every command pays).

The four are run in turn, ``--repeat`` rounds, so each sees the same machine; the median
is the figure, the range is printed next to it. Then each command runs once more under
``python -X importtime`` to say where its imports go (``-X importtime`` itself inflates
them a little) and which heavy modules it loads.

By default newsletter runs from a regular install of this checkout in
``bench/.work/nl-venv`` (byte-compiled by pip, as users get it; the same dependencies as
``.venv``, see ``bench/ingest.py``); ``--python .venv/bin/python`` measures the editable
install instead, whose import hook costs a few tens of milliseconds more.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work"
SCRATCH = WORK / "startup"

sys.path.insert(0, str(HERE))
from ingest import Run, install_newsletter, measure  # noqa: E402

DEMO_FEEDS = sorted((ROOT / "config" / "feeds").iterdir())
TARGETS = {"digest": 1.0, "send": 0.5}
HEAVY = (
    "sklearn",
    "scipy.sparse",
    "scipy.sparse.linalg",
    "scipy.stats",
    "numpy",
    "sqlalchemy",
    "pydantic",
    "jinja2",
    "css_inline",
    "feedgen",
    "email_validator",
    "aiosmtplib",
    "rich",
    "platformdirs",
    "httpx",
    "lxml",
    "markdown",
)
"""Modules worth naming when a command loads them."""

_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def log(msg: str) -> None:
    print(f"[startup] {msg}", file=sys.stderr, flush=True)


@dataclass
class Timed:
    """Repeated wall times of one command; the median is the figure."""

    label: str
    argv: list[str]
    seconds: list[float] = field(default_factory=list)
    error: str | None = None

    def median(self) -> float:
        return statistics.median(self.seconds)


def demo_config(folder: Path) -> Path:
    """``config/demo.toml`` with its sources as absolute paths and everything it writes
    (database, mail folder, outputs) under ``folder`` (the commands run there)."""
    text = (ROOT / "config" / "demo.toml").read_text(encoding="utf-8")
    text = text.replace('"config/', f'"{ROOT}/config/')
    # The sources stay where they are: let this config read them (fetch.local_root).
    text += f'\n[fetch]\nlocal_root = "{ROOT}/config/feeds"\n'
    (folder / "out").mkdir(parents=True, exist_ok=True)
    path = folder / "demo.toml"
    path.write_text(text, encoding="utf-8")
    return path


def checked(run: Run) -> Run:
    if not run.ok:
        raise RuntimeError(run.why())
    return run


def environment() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1"}
    # bench/run.py puts the checkout on PYTHONPATH; the commands must run the install.
    env.pop("PYTHONPATH", None)
    for name in list(env):
        if name.startswith("NEWSLETTER_"):
            del env[name]  # the commands must read the bench's config, nothing else
    return env


def import_breakdown(stderr: str) -> tuple[float, Counter[str], set[str]]:
    """From ``-X importtime`` output: total import seconds, self seconds by top-level
    package, and every module imported."""
    by_package: Counter[str] = Counter()
    modules: set[str] = set()
    total = 0.0
    for line in stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m is None:
            continue
        own, cumulative, indent, name = int(m[1]), int(m[2]), len(m[3]), m[4]
        modules.add(name)
        by_package[name.split(".")[0]] += own / 1e6
        if indent == 1:  # a top-level import: its cumulative time counts once
            total += cumulative / 1e6
    return total, by_package, modules


def loaded(name: str, modules: set[str]) -> bool:
    """Whether ``name`` or any of its submodules was imported."""
    return any(m == name or m.startswith(f"{name}.") for m in modules)


def report(
    timed: Sequence[Timed],
    imports: dict[str, tuple[float, Counter[str], set[str]]],
    args: argparse.Namespace,
    where: str,
    loads: tuple[str, str],
) -> str:
    out = [
        "### Start-up: `newsletter digest` (one-off) and `newsletter send --dry-run`",
        "",
        f"Each command is a separate process, wall time around it; {args.repeat} rounds of "
        "the four in turn, median (range). The one-off digest reads the four demo feeds "
        f"(`config/feeds/*`, {len(DEMO_FEEDS)} files) into an in-memory database and "
        "writes Markdown to stdout; `send --dry-run` uses `config/demo.toml` after a "
        "`fetch` and a `subscribers import` (not timed): it builds the edition's digest "
        f"and one sample message. newsletter runs from {where}. Load average (1 min) "
        f"before: {loads[0]}, after: {loads[1]}.",
        "",
        "| command | seconds | × `python -c pass` | target | met |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    base = timed[0].median() if timed[0].seconds else None
    for t in timed:
        if t.error or not t.seconds:
            out.append(f"| {t.label} | n/a | | | failed: {(t.error or '')[:300]} |")
            continue
        ratio = f"{t.median() / base:.1f}×" if base else "n/a"
        figure = f"{t.median():.3f} ({min(t.seconds):.3f}–{max(t.seconds):.3f})"
        key = next((k for k in TARGETS if f"newsletter {k}" in t.label), None)
        target = f"≤ {TARGETS[key]:.1f} s" if key else "reference"
        met = ("yes" if t.median() <= TARGETS[key] else "**no**") if key else ""
        out.append(f"| {t.label} | {figure} | {ratio} | {target} | {met} |")
    if imports:
        out += [
            "",
            "Where the imports go (`-X importtime`, one run each, self time summed by "
            "top-level package, largest first; `-X importtime` inflates them a little):",
            "",
            "| command | all imports (s) | largest packages (ms) | heavy modules loaded |",
            "| --- | ---: | --- | --- |",
        ]
        for label, (total, packages, modules) in imports.items():
            top = ", ".join(f"{name} {secs * 1000:.0f}" for name, secs in packages.most_common(8))
            heavy = ", ".join(h for h in HEAVY if loaded(h, modules)) or "none of them"
            out.append(f"| {label} | {total:.2f} | {top} | {heavy} |")
    out += [
        "",
        "Targets from issue 9, point 10 (one-off digest ≤ 1.0 s, `send --dry-run` ≤ 0.5 s "
        "wall on this machine). On a shared machine the seconds move from run to run; the "
        "ratio to `python -c pass` holds better.",
    ]
    return "\n".join(out)


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="rounds (median kept)")
    parser.add_argument(
        "--python",
        type=Path,
        help="run newsletter with this interpreter (default: a regular install of this "
        "checkout in bench/.work/nl-venv)",
    )
    parser.add_argument("--no-imports", action="store_true", help="skip -X importtime")
    args = parser.parse_args(argv)
    loads = [load_average()]
    if args.python:
        python = args.python.absolute()
        where = f"`{args.python}`"
    else:
        WORK.mkdir(exist_ok=True)
        python = install_newsletter()
        where = "a regular install of this checkout in `bench/.work/nl-venv`"
    cli = str(python.parent / "newsletter")
    env = environment()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    for old in SCRATCH.glob("out/*.sqlite*"):
        old.unlink()
    config = demo_config(SCRATCH)
    log("filling the demo database (fetch, subscribers import)")
    checked(measure([cli, "fetch", "--config", str(config)], env=env, cwd=SCRATCH))
    subscribers = str(ROOT / "config" / "demo-subscribers.csv")
    checked(
        measure(
            [cli, "subscribers", "import", subscribers, "--config", str(config)],
            env=env,
            cwd=SCRATCH,
        )
    )
    digest_args = ["digest", *map(str, DEMO_FEEDS)]
    send_args = ["send", "--config", str(config), "--dry-run"]
    timed = [
        Timed("`python -c pass`", [str(python), "-c", "pass"]),
        Timed('`python -c "import newsletter.cli"`', [str(python), "-c", "import newsletter.cli"]),
        Timed("`newsletter digest config/feeds/*` (one-off)", [cli, *digest_args]),
        Timed("`newsletter send --config demo.toml --dry-run`", [cli, *send_args]),
    ]
    for round_ in range(args.repeat):
        log(f"round {round_ + 1}/{args.repeat}")
        for t in timed:
            if t.error:
                continue
            # cwd: the scratch folder, so `-c` never imports the checkout's package.
            run = measure(t.argv, env=env, cwd=SCRATCH, timeout=120)
            if run.ok:
                t.seconds.append(run.seconds)
            else:
                t.error = run.why()
    imports: dict[str, tuple[float, Counter[str], set[str]]] = {}
    if not args.no_imports:
        for label, rest in (
            ("`import newsletter.cli`", ["-c", "import newsletter.cli"]),
            ("one-off `digest`", ["-m", "newsletter", *digest_args]),
            ("`send --dry-run`", ["-m", "newsletter", *send_args]),
        ):
            run = measure([str(python), "-X", "importtime", *rest], env=env, cwd=SCRATCH)
            if run.ok:
                imports[label] = import_breakdown(run.stderr)
    loads.append(load_average())
    print(report(timed, imports, args, where, (loads[0], loads[1])))
    return 1 if any(t.error for t in timed) else 0


if __name__ == "__main__":
    sys.exit(main())
