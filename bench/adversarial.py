"""Hostile input: one huge feed, and every function that walks entry text on adversarial
text (issue 11, findings 1 and 2).

Run: ``PYTHONPATH=. python bench/adversarial.py [--items 100000 10000] [--sizes 1 10]
[--quick]``

1. **A huge feed.** An RSS feed of N items whose titles all share a word (the shape that
   made ``summarize/dedupe.py`` ask for 74.5 GiB) is written to a temporary folder, then
   ``newsletter fetch`` and ``newsletter digest --no-fetch --format html`` run on it as
   subprocesses (wall time and their own peak RSS, ``bench/harness.measure``), with the
   default candidate caps and with the caps lifted (every entry reaches the duplicate
   search: the search itself must be bounded, not only its input). Targets: 100k items
   under 30 s and 1 GB, 10k items under 3 s.
2. **Text functions.** Each function that walks entry text runs on inputs of 1 MB and
   10 MB of each adversarial shape (many periods, deep nesting, no spaces, long words,
   markup and entity soup). Each cell runs in a forked process with a time limit, so a
   quadratic function is reported as such instead of hanging the bench. The figure is
   seconds per MB; "ratio" is the 10 MB time over ten times the 1 MB time (about 1 for a
   linear function; above 3 is flagged).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from harness import log, measure  # noqa: E402

CELL_LIMIT = 60.0
"""Seconds one text-function cell may take before it is called superlinear."""


# -- 1. the huge feed -------------------------------------------------------------------------


def write_feed(path: Path, items: int) -> int:
    """An RSS feed of ``items`` items whose titles all share the word "Update" (about
    80 bytes an item: 100k items stay under the 10 MB body cap, like the feed of the
    issue); its size."""
    with path.open("w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>')
        f.write("<title>Huge</title><link>https://example.org/</link>")
        for i in range(items):
            f.write(
                f"<item><title>Update {i} q{i * 7919 % 100_003:x}</title>"
                f"<link>https://e.org/{i}</link></item>"
            )
        f.write("</channel></rss>\n")
    return path.stat().st_size


def feed_rows(items: int) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="adversarial-") as tmp:
        folder = Path(tmp)
        size = write_feed(folder / "huge.xml", items)
        for label, caps in (("default caps", ""), ("caps lifted", "lifted")):
            extra = (
                "max_candidates = 1000000\nmax_candidates_per_source = 1000000\n" if caps else ""
            )
            db = folder / f"db-{caps or 'default'}.sqlite"
            config = folder / f"c-{caps or 'default'}.toml"
            config.write_text(
                f'database_url = "sqlite:///{db}"\n'
                '[[sources]]\nname = "huge"\nurl = "huge.xml"\n'
                f'[[digests]]\nname = "d"\ntitle = "D"\nsince = "3650d"\n{extra}',
                encoding="utf-8",
            )
            exe = str(Path(sys.executable).with_name("newsletter"))
            env = {**os.environ, "NEWSLETTER_SECRET_KEY": "bench"}
            fetch = measure([exe, "fetch", "--config", str(config)], env=env, cwd=folder)
            if not fetch.ok:
                rows.append(f"| {items:,} | {label} | fetch failed: {fetch.why()[:200]} | | |")
                continue
            digest = measure(
                [
                    exe,
                    "digest",
                    "--config",
                    str(config),
                    "--no-fetch",
                    "--format",
                    "html",
                    "--output",
                    str(folder / "out.html"),
                ],
                env=env,
                cwd=folder,
                timeout=900,
            )
            if not digest.ok:
                rows.append(
                    f"| {items:,} | {label} | {fetch.seconds:.1f} s | failed: "
                    f"{digest.why()[:200]} | |"
                )
                continue
            rows.append(
                f"| {items:,} ({size / 1e6:.1f} MB) | {label} | {fetch.seconds:.1f} s, "
                f"{fetch.max_rss_mb:.0f} MB | {digest.seconds:.2f} s | {digest.max_rss_mb:.0f} MB |"
            )
            log(rows[-1])
    return rows


# -- 2. text functions --------------------------------------------------------------------------


def shapes(size: int) -> dict[str, str]:
    """Adversarial texts of about ``size`` characters."""

    def fill(unit: str) -> str:
        return (unit * (size // len(unit) + 1))[:size]

    return {
        "periods": fill("."),
        "periods+space": fill("a. "),
        "initials": fill("J. K. L. "),
        "nesting": fill("<div><p><b><i>"),
        "no spaces": fill("abcdefghij"),
        "long words": fill("a" * 5000 + " "),
        "open tags": fill("<a href='"),
        "entities": fill("&amp;&#x26;&lt;"),
        "markdown": fill("[![*_`"),
        "urls": fill("https://example.org/a?b=c&utm_source=x#f "),
        "quotes": fill('."""""""'),
    }


def functions() -> dict[str, Callable[[str], object]]:
    """Every function that walks entry text: the same table the linear-time test checks
    (tests/summarize/test_linear_text.py), so the two cannot drift apart."""
    from tests.summarize.test_linear_text import FUNCTIONS

    return FUNCTIONS


def _cell(name: str, shape: str, size: int, conn: object) -> None:
    fn = functions()[name]
    text = shapes(size)[shape]
    started = time.perf_counter()
    fn(text)
    conn.send(time.perf_counter() - started)  # type: ignore[attr-defined]


def run_cell(name: str, shape: str, size: int) -> float | None:
    """Seconds, or None past ``CELL_LIMIT``."""
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_cell, args=(name, shape, size, there))
    proc.start()
    if here.poll(CELL_LIMIT):
        seconds = float(here.recv())
        proc.join()
        return seconds
    proc.kill()
    proc.join()
    return None


def text_rows(sizes: list[int]) -> list[str]:
    rows = []
    names = list(functions())
    shape_names = list(shapes(16))
    for name in names:
        worst: dict[int, tuple[float, str]] = {}
        over: list[str] = []
        for shape in shape_names:
            for mb in sizes:
                seconds = run_cell(name, shape, mb * 1_000_000)
                if seconds is None:
                    over.append(f"{shape} at {mb} MB")
                    break
                if seconds / mb > worst.get(mb, (-1.0, ""))[0]:
                    worst[mb] = (seconds / mb, shape)
        cells = [f"{worst[mb][0]:.3f} ({worst[mb][1]})" if mb in worst else "—" for mb in sizes]
        ratio = ""
        if len(sizes) > 1 and sizes[0] in worst and sizes[-1] in worst:
            r = worst[sizes[-1]][0] / max(worst[sizes[0]][0], 1e-9)
            ratio = f"{r:.1f}" + (" **superlinear**" if r > 3 else "")
        note = f"over {CELL_LIMIT:.0f} s: {', '.join(over)}" if over else ""
        rows.append(f"| `{name}` | {' | '.join(cells)} | {ratio} | {note} |")
        log(rows[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="*", default=[100_000, 10_000])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1, 10], help="MB")
    parser.add_argument("--quick", action="store_true", help="10k items, 1 MB texts")
    parser.add_argument("--no-feed", action="store_true")
    parser.add_argument("--no-text", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.items, args.sizes = [10_000], [1]
    print("## Hostile input\n")
    if not args.no_feed:
        print(
            "One RSS feed whose item titles all share a word; `fetch`, then `digest "
            "--no-fetch --format html` (peak RSS of each command's own process). "
            "Targets: 100k items under 30 s and 1 GB, 10k items under 3 s.\n"
        )
        print("| items | candidates | fetch | digest | digest peak |")
        print("| --- | --- | --- | --- | --- |")
        for items in args.items:
            for row in feed_rows(items):
                print(row, flush=True)
        print()
    if not args.no_text:
        print(
            "Each function on adversarial text: seconds per MB of the worst shape (of: "
            + ", ".join(shapes(16))
            + "); ratio = (s/MB at the largest size) / (s/MB at "
            "the smallest), about 1 when linear.\n"
        )
        print(
            "| function | "
            + " | ".join(f"s/MB at {mb} MB" for mb in args.sizes)
            + " | ratio | note |"
        )
        print("| --- | " + " | ".join("---" for _ in args.sizes) + " | --- | --- |")
        for row in text_rows(args.sizes):
            print(row, flush=True)


if __name__ == "__main__":
    main()
