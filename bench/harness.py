"""What the fetch benches share: measuring a subprocess, repeated measurements, the local
feed server, and venvs of other programs under ``bench/.work``.

Wall time is measured around each subprocess; peak memory is that process's own maximum
resident set size (``ru_maxrss`` from ``os.wait4``; on Linux the largest of the process
and the children it waited for, so parse workers count if they were the largest), taken
through a small launcher (see ``LAUNCHER``).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work"


def log(msg: str) -> None:
    print(f"[{Path(sys.argv[0]).stem}] {msg}", file=sys.stderr, flush=True)


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
        return f"`{Path(self.argv[0]).name} {' '.join(self.argv[1:])}` {what}: {tail}"


# The measured command is started by this small launcher, not by the bench itself: a
# process started from another (vfork, or fork then exec) inherits that process's peak
# RSS as its own floor on Linux, so a bench holding 300 MB would see every command it
# starts peak at 300 MB or more. The launcher's own peak (~10 MB, a bare interpreter) is
# the floor instead, below any Python program measured here. It times the command too.
LAUNCHER = r"""
import json, os, signal, sys, time
out, timeout, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
started = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.setitimer(signal.ITIMER_REAL, timeout)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
signal.setitimer(signal.ITIMER_REAL, 0)
code = os.waitstatus_to_exitcode(status)
with open(out, "w") as f:
    json.dump({"seconds": seconds, "kb": usage.ru_maxrss, "code": code}, f)
"""


def measure(
    argv: Sequence[str],
    *,
    timeout: float = 600,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Run:
    """Run ``argv`` through ``LAUNCHER``: its wall seconds and its own peak RSS."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(suffix=".json") as figures,
    ):
        launcher = [sys.executable, "-c", LAUNCHER, figures.name, str(timeout), *argv]
        subprocess.run(launcher, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
        try:
            done = json.loads(Path(figures.name).read_text())
        except ValueError:
            return Run(list(argv), 0.0, 0.0, -1, stdout, f"the launcher failed: {stderr}")
    return Run(
        list(argv),
        done["seconds"],
        done["kb"] / 1024,  # kB on Linux
        done["code"],
        stdout,
        stderr,
        timed_out=done["code"] == -9,
    )


@dataclass
class Series:
    """Repeated measurements of one thing; the median is the figure."""

    runs: list[Run] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def measured(self) -> bool:
        return bool(self.runs) and self.error is None

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def rss(self) -> float:
        return statistics.median(r.max_rss_mb for r in self.runs)

    def spread(self) -> str:
        xs = [r.seconds for r in self.runs]
        return f"{min(xs):.2f}–{max(xs):.2f} s" if len(xs) > 1 else ""


# -- the feed server ----------------------------------------------------------------------


@contextlib.contextmanager
def feed_server(feeds: int, entries: int, seed: int) -> Iterator[str]:
    """``bench/feeds.py`` in its own process (its threads must not share our GIL), on a
    port the kernel picked; yields its base URL."""
    argv = [sys.executable, str(HERE / "feeds.py"), "--feeds", str(feeds)]
    argv += ["--entries", str(entries), "--seed", str(seed)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
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


# -- venvs ----------------------------------------------------------------------------------


def venv_with(name: str, packages: Sequence[str], *, project_deps: bool) -> tuple[Path | None, str]:
    """The python of ``bench/.work/<name>`` with ``packages`` pip-installed (made if
    missing); with ``project_deps``, this venv's packages are importable there too (a
    ``.pth`` file), so both run the same libraries. None and why when it cannot be had."""
    venv = WORK / name
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import sys; sys.exit(0)"]
    if not python.exists() or subprocess.run(probe, capture_output=True).returncode != 0:
        log(f"creating {venv}")
        done = subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(venv)], capture_output=True, text=True
        )
        if done.returncode != 0:
            return None, f"python -m venv failed: {done.stderr.strip()[-300:]}"
    if project_deps:
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        deps = sysconfig.get_paths()["purelib"]
        (Path(site) / "newsletter-bench-deps.pth").write_text(deps + "\n", encoding="utf-8")
    if packages:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *packages],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            return None, f"pip install {' '.join(packages)} failed: {done.stderr.strip()[-400:]}"
    return python, ""


def install_newsletter() -> Path:
    """newsletter as users get it: a regular install of this checkout (byte-compiled by
    pip, no editable import hook) into ``bench/.work/nl-venv``, on this venv's
    dependencies. Returns the venv's python."""
    python, why = venv_with("nl-venv", [], project_deps=True)
    if python is None:
        raise RuntimeError(why)
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


def current_rss_mb() -> float:
    """This process's resident memory now (not its peak), in MB of 2**20 bytes as
    ``ru_maxrss`` figures are."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
