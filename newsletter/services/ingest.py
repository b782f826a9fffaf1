"""The fetch stage: fetch sources, parse their bodies off the event loop and record the
outcome (new entries, source states) in the store.

Downloads go through a ``Fetcher`` (``newsletter.sources.fetch``): ``ingest_async`` takes
one, so a caller that polls again and again (the daemon) keeps one HTTP client for all
its runs, and tests can pass a ``MemoryFetcher``. The store is anything with
``ensure_sources`` and ``record_fetch`` (``newsletter.store.database.Store``). The parsers
load with the first body.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from newsletter.models import Entry, ParsedSource, Source, SourceState
from newsletter.sources.fetch import Fetcher, FetchRequest, FetchResult

if TYPE_CHECKING:
    from newsletter.config import FetchConfig

log = logging.getLogger("newsletter")


class SourceStore(Protocol):
    """What a fetch run needs from the store (``Store`` has it)."""

    def ensure_sources(self, sources: Iterable[tuple[str, str]]) -> dict[str, SourceState]: ...

    def record_fetch(
        self,
        entries: Iterable[Entry],
        updates: Mapping[str, Mapping[str, Any]],
        *,
        now: datetime,
    ) -> list[Entry]: ...


@dataclass(frozen=True)
class SourceReport:
    """What happened to one source in one fetch run."""

    name: str
    url: str
    status: str
    """``ok``, ``not_modified``, ``skipped``, ``gone``, ``retry_later`` or ``error``."""
    entries: int = 0
    new: int = 0
    error: str | None = None
    parser: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status in ("error", "gone", "retry_later")


@dataclass
class IngestReport:
    """The outcome of fetching a set of sources."""

    sources: list[SourceReport] = field(default_factory=list)
    new: int = 0
    """How many entries were new (stored now). The entries themselves are in the store:
    holding 10,000 of them here until the end of a run doubled its memory."""
    titles: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failures(self) -> list[SourceReport]:
        return [s for s in self.sources if s.failed]

    @property
    def readable(self) -> int:
        """How many sources gave a usable answer (entries or 304)."""
        return sum(1 for s in self.sources if s.status in ("ok", "not_modified"))


PARSE_WORKERS = 2
"""Parser processes (at most one per core): parsing and sanitizing are CPU work, and
processes, unlike threads, run it in parallel with each other and with the downloads."""
WRITE_EVERY_ENTRIES = 500
WRITE_EVERY_SECONDS = 1.0
"""Outcomes are written in one transaction per batch: when this many new entries wait,
or this long after the last write (so progress stays live), and at the end."""

_ParseOutcome = tuple[ParsedSource | None, str | None]


def _parse_pool() -> Executor:
    """Worker processes for parsing, started now; worker threads where processes cannot
    be had. The workers come from a fork server that has imported the parsers and
    nothing else: they start small, with the parsers loaded, and never inherit this
    process's threads (the daemon has some, and so has a run whose HTTP client has
    resolved a name). Where there is no fork server (Windows), they are spawned. Either
    way a worker imports the program's main module first, as multiprocessing does: a
    script that fetches must do so under ``if __name__ == "__main__":``."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing.context import BaseContext

    workers = max(1, min(PARSE_WORKERS, os.cpu_count() or 1))
    try:
        context: BaseContext
        if "forkserver" in multiprocessing.get_all_start_methods():
            server = multiprocessing.get_context("forkserver")
            # Read when the fork server starts (once per process, at its first pool).
            server.set_forkserver_preload(["newsletter.sources.parse", "newsletter.sources.worker"])
            context = server
        else:
            context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(workers, mp_context=context)
        # The first task starts the fork server and a worker while downloads begin.
        pool.submit(int)
        return pool
    except (OSError, ImportError, NotImplementedError, ValueError):
        return ThreadPoolExecutor(workers, thread_name_prefix="parse")


def _expects_bodies(requests: Sequence[FetchRequest]) -> bool:
    """Whether some request will probably return a body: one without validators (a new
    source, a local file, a server that sends none) cannot be answered 304."""
    return any(not (r.etag or r.last_modified) for r in requests)


class _Recorder:
    """Collects each source's outcome as it arrives and writes them in batches: entries
    and source states of a batch in one transaction. Reports are emitted once written
    (their count of new entries is known then)."""

    def __init__(
        self,
        store: SourceStore,
        states: dict[str, SourceState],
        now: datetime,
        report: IngestReport,
        on_progress: Callable[[SourceReport], None] | None,
    ) -> None:
        self.store = store
        self.states = states
        self.now = now
        self.report = report
        self.on_progress = on_progress
        self.entries: list[Entry] = []
        self.updates: dict[str, dict[str, object]] = {}
        self.waiting: list[SourceReport] = []
        self.done: dict[str, SourceReport] = {}
        self.new: Counter[str] = Counter()
        self.last_write = time.monotonic()

    def add(
        self,
        source: Source,
        result: FetchResult,
        parsed: ParsedSource | None,
        parse_error: str | None,
    ) -> None:
        """Record one source's outcome (written now or with a later batch)."""
        updates, sr = _outcome(
            source, self.states[source.name], result, parsed, parse_error, self.now
        )
        if parsed is not None and sr.status == "ok":
            self.entries.extend(parsed.entries)
            if parsed.info.title:
                self.report.titles[source.name] = parsed.info.title
        self.updates[source.name] = updates
        self.waiting.append(sr)
        if (
            len(self.entries) >= WRITE_EVERY_ENTRIES
            or time.monotonic() - self.last_write >= WRITE_EVERY_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        """Write what is waiting, in one transaction, and report it."""
        if not self.waiting:
            return
        new = self.store.record_fetch(self.entries, self.updates, now=self.now)
        for e in new:
            self.new[e.source] += 1
        for sr in self.waiting:
            if sr.status == "ok":
                sr = replace(sr, new=self.new[sr.name])
            self.done[sr.name] = sr
            if self.on_progress:
                self.on_progress(sr)
        self.entries, self.updates, self.waiting = [], {}, []
        self.last_write = time.monotonic()


async def ingest_async(
    sources: Sequence[Source],
    store: SourceStore,
    fetcher: Fetcher,
    *,
    now: datetime,
    on_progress: Callable[[SourceReport], None] | None = None,
    executor: Executor | None = None,
) -> IngestReport:
    """Fetch every source concurrently through ``fetcher``, parse off the event loop,
    store new entries.

    Bodies are parsed in worker processes (or ``executor``) as they arrive, and outcomes
    are stored in batches as parsing finishes. A broken source never stops the others: it
    gets a report with the reason, and its error count in the store goes up. Sources
    marked gone (410) or asked to wait (Retry-After in the future) are skipped with a
    report saying so. ``report.sources`` lists skipped sources first, then the others in
    the order given; ``on_progress`` sees each as it is stored.
    """
    started = time.perf_counter()
    report = IngestReport()
    states = store.ensure_sources((s.name, s.url) for s in sources)
    requests: list[FetchRequest] = []
    by_name = {s.name: s for s in sources}
    for s in sources:
        state = states[s.name]
        skip = _skip_reason(state, now)
        if skip:
            _emit(report, on_progress, SourceReport(s.name, s.url, "skipped", error=skip))
            continue
        requests.append(
            FetchRequest(
                source=s.name,
                url=state.fetch_url or s.url,
                etag=state.etag,
                last_modified=state.last_modified,
            )
        )

    loop = asyncio.get_running_loop()
    recorder = _Recorder(store, states, now, report, on_progress)
    pool: Executor | None = executor
    own_pool = False
    if pool is None and _expects_bodies(requests):
        # Start the parsers with the first requests, so that they are ready when the
        # first body arrives (a warm run of 304s never pays this).
        pool, own_pool = _parse_pool(), True
    parsing: list[asyncio.Task[None]] = []

    async def parse_and_record(result: FetchResult, source: Source) -> None:
        nonlocal pool
        assert pool is not None
        call = (
            result.body,
            source.name,
            result.final_url or source.url,
            source.kind,
            result.content_type,
        )
        # By reference from a light module: this process never loads the parsers
        # unless it must parse in a thread.
        from newsletter.sources.worker import parse_outcome

        try:
            outcome: _ParseOutcome = await loop.run_in_executor(pool, parse_outcome, *call)
        except BrokenExecutor:
            # A worker died (killed, out of memory): finish the run in threads.
            log.warning("parser workers stopped; parsing %s in a thread", source.name)
            if own_pool:
                pool = ThreadPoolExecutor(PARSE_WORKERS, thread_name_prefix="parse")
            outcome = await asyncio.to_thread(parse_outcome, *call)
        recorder.add(source, result, *outcome)

    def on_result(result: FetchResult) -> None:
        # Parse while other downloads are still in flight, in a worker: parsing and
        # sanitizing are CPU work and must not block the event loop.
        nonlocal pool, own_pool
        source = by_name[result.request.source]
        if not result.ok:
            recorder.add(source, result, None, None)
            return
        if pool is None:
            pool, own_pool = _parse_pool(), True
        parsing.append(loop.create_task(parse_and_record(result, source)))

    try:
        await fetcher.stream(requests, on_result)
        await asyncio.gather(*parsing)
        recorder.flush()
    finally:
        for task in parsing:
            task.cancel()
        if own_pool and pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    skipped = list(report.sources)
    report.sources = skipped + [recorder.done[r.source] for r in requests]
    report.new = sum(recorder.new.values())
    report.seconds = time.perf_counter() - started
    return report


def _skip_reason(state: SourceState, now: datetime) -> str | None:
    """Why a source is not fetched this time, if it is not: gone, or asked to wait."""
    if state.status == "gone":
        return "the server said it is gone (HTTP 410); remove it from the config"
    if state.retry_after and state.retry_after > now:
        return f"asked to wait until {state.retry_after:%Y-%m-%d %H:%M} UTC"
    return None


def _emit(
    report: IngestReport,
    on_progress: Callable[[SourceReport], None] | None,
    sr: SourceReport,
) -> None:
    report.sources.append(sr)
    if on_progress:
        on_progress(sr)


def _outcome(
    source: Source,
    state: SourceState,
    result: FetchResult,
    parsed: ParsedSource | None,
    parse_error: str | None,
    now: datetime,
) -> tuple[dict[str, object], SourceReport]:
    """What to store about one source's fetch, and its report (``new`` is filled in
    once its entries are stored)."""
    url = result.request.url
    common: dict[str, object] = {"last_fetched": now}
    if result.new_url:
        common["fetch_url"] = result.new_url
    if result.status == "ok" and parsed is not None:
        updates = {
            **common,
            "etag": result.etag,
            "last_modified": result.last_modified,
            "status": "ok",
            "error_count": 0,
            "last_error": None,
            "last_ok": now,
            "retry_after": None,
            "title": parsed.info.title,
        }
        sr = SourceReport(
            source.name,
            url,
            "ok",
            len(parsed.entries),
            0,
            None,
            parsed.parser,
            result.elapsed,
        )
        return updates, sr
    if result.status == "not_modified":
        updates = {
            **common,
            "status": "ok",
            "error_count": 0,
            "last_error": None,
            "last_ok": now,
            "etag": result.etag or state.etag,
            "last_modified": result.last_modified or state.last_modified,
        }
        return updates, SourceReport(source.name, url, "not_modified", seconds=result.elapsed)
    if result.status == "ok":
        reason = parse_error or "could not be parsed"
        status = "error"
    elif result.status == "gone":
        reason = "the server says it is gone (HTTP 410): it will be skipped from now on"
        status = "gone"
    elif result.status == "retry_later":
        when = f" until {result.retry_after:%Y-%m-%d %H:%M} UTC" if result.retry_after else ""
        reason = f"{result.error or 'the server is busy'}: will wait{when}"
        status = "retry_later"
    else:
        reason = result.error or "failed"
        status = "error"
    updates = {
        **common,
        "status": "gone" if status == "gone" else "error",
        "error_count": state.error_count + 1,
        "last_error": reason,
        "retry_after": result.retry_after,
    }
    return updates, SourceReport(source.name, url, status, error=reason, seconds=result.elapsed)


def ingest(
    sources: Sequence[Source],
    store: SourceStore,
    config: FetchConfig,
    *,
    now: datetime,
    on_progress: Callable[[SourceReport], None] | None = None,
) -> IngestReport:
    """Synchronous ``ingest_async`` for a one-off run: through an ``HttpFetcher`` made
    from ``config`` and closed at the end."""
    from newsletter.sources.fetch import HttpFetcher

    done: list[IngestReport] = []

    async def run() -> None:
        async with HttpFetcher(config) as fetcher:
            report = await ingest_async(sources, store, fetcher, now=now, on_progress=on_progress)
        done.append(report)

    # The report is handed over outside the main task on purpose: when asyncio.run
    # restores the SIGINT handler, Python 3.11 builds the repr of the finished main task,
    # result included, which for 10,000 new entries takes half a second.
    asyncio.run(run())
    return done[0]


__all__ = [
    "IngestReport",
    "SourceReport",
    "SourceStore",
    "ingest",
    "ingest_async",
]
