"""Helpers for tests that wait on something outside the test: a condition another thread
or process brings about, a log line of a server process, a sender killed mid-send; and a
settable clock for the code that reads one.

Every wait here has a timeout, and it is a hang guard only (generous, so a busy machine
never trips it): no test asserts how fast anything is. Speed belongs in ``bench/``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

HANG_GUARD = 60.0
"""Seconds before a wait gives up and fails the test: only ever reached when something
hangs."""


def wait_until(
    condition: Callable[[], object],
    *,
    message: str = "the condition never held",
    timeout: float = HANG_GUARD,
    interval: float = 0.01,
) -> None:
    """Poll ``condition`` until it holds; fail with ``message`` after ``timeout`` (a hang
    guard)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(interval)


def refusing_port() -> int:
    """A port nothing listens on, for "connection refused": bound (so the kernel picks one
    that is free), read back, then closed. Closing it is the point here; a server a test
    starts binds port 0 and keeps its socket instead."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def newsletter_command() -> list[str]:
    """The installed ``newsletter`` script of this interpreter's environment."""
    script = Path(sys.executable).with_name("newsletter")
    if script.exists():
        return [str(script)]
    found = shutil.which("newsletter")
    assert found, "the newsletter command is not installed"
    return [found]


def process_env(**variables: str) -> dict[str, str]:
    """This environment without any ``NEWSLETTER_*`` variable, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(variables)
    return env


class LoggedProcess:
    """A process whose stderr is read line by line in a thread, so a test can wait for a
    line (``wait_for``) while the process runs, and read all of it (``stderr``) after."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = HANG_GUARD) -> re.Match[str]:
        """The first stderr line matching ``pattern``, waiting for it (the process must
        not end first)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if found := regex.search(line):
                        return found
                seen = len(self.lines)
                ended = not self._reader.is_alive()
                assert not ended, f"the process ended without {pattern!r}:\n{self.stderr}"
                left = deadline - time.monotonic()
                assert left > 0, f"no {pattern!r} in the log (hang guard):\n{self.stderr}"
                self._changed.wait(left)

    def finish(self, timeout: float = HANG_GUARD) -> int:
        """Wait for the process to end and its stderr to be read; its exit code."""
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code

    @property
    def stderr(self) -> str:
        with self._changed:
            return "".join(self.lines)


@contextmanager
def logged_process(
    args: Sequence[str], *, env: dict[str, str], cwd: Path | None = None
) -> Iterator[LoggedProcess]:
    """Run ``args`` with stderr read by a ``LoggedProcess``; killed if still running at the
    end of the block."""
    proc = subprocess.Popen(
        list(args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        text=True,
    )
    logged = LoggedProcess(proc)
    try:
        yield logged
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        logged._reader.join(HANG_GUARD)
        if proc.stderr is not None:
            proc.stderr.close()


def kill_mid_send(
    cmd: Sequence[str], env: dict[str, str], *, received: Callable[[], int], target: int, log: Path
) -> None:
    """Start the sender ``cmd``, let the server receive ``target`` messages in all, then
    kill it with SIGKILL. It must still be running (sending) when the kill lands; its
    output goes to ``log``."""
    with log.open("wb") as out:
        proc = subprocess.Popen(list(cmd), env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(
                lambda: received() >= target or proc.poll() is not None,
                message="the sender made no progress",
                interval=0.002,
            )
            assert proc.poll() is None, f"the run ended before its kill:\n{log.read_text()}"
            proc.send_signal(signal.SIGKILL)
            assert proc.wait() == -signal.SIGKILL  # it died of the kill, mid-send
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class Clock:
    """A settable clock: ``clock()`` is ``clock.now``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def eventually(
    condition: Callable[[], object],
    *,
    message: str = "the condition never held",
    timeout: float = HANG_GUARD,
    interval: float = 0.02,
) -> None:
    """``wait_until`` for coroutines: the event loop runs on while it waits."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(interval)


def open_at_once(url: str, connections: int = 6) -> list[str]:
    """Open ``url`` from ``connections`` threads released together (a `run` and a `serve`
    started at the same moment on a new database); the errors they met."""
    import threading

    from newsletter.errors import StoreError
    from newsletter.store.database import Store

    errors: list[str] = []
    start = threading.Barrier(connections)

    def open_store() -> None:
        start.wait(timeout=HANG_GUARD)
        try:
            with Store(url) as store:
                store.source_states()
        except StoreError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=open_store) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HANG_GUARD)
    return errors
