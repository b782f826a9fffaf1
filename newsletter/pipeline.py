"""The pipeline's I/O shell: fetch and parse sources into the store, select entries for a
digest, write its outputs. The pure stages (parse, summarize, digest, render) are called
from here; the CLI and the scheduler call these functions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.config import DigestConfig, Settings, SourceConfig, parse_duration
from newsletter.fetch import FetchRequest, FetchResult, FetchSettings, fetch_all
from newsletter.models import Digest, Entry, ParsedSource, Source
from newsletter.render import FORMATS, Format, cached_environment, render_digest
from newsletter.store import SourceState, Store

if TYPE_CHECKING:
    # The summarizer pulls in scikit-learn, which takes a second or more to import:
    # `newsletter fetch` never needs it, so it is imported only when a digest is built.
    from newsletter.digest import DigestOptions

log = logging.getLogger("newsletter")


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
    new_entries: list[Entry] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failures(self) -> list[SourceReport]:
        return [s for s in self.sources if s.failed]

    @property
    def readable(self) -> int:
        """How many sources gave a usable answer (entries or 304)."""
        return sum(1 for s in self.sources if s.status in ("ok", "not_modified"))


def source_from_config(c: SourceConfig) -> Source:
    return Source(name=c.name, url=c.url, kind=c.kind, weight=c.weight, title=c.title)


def sources_from_args(args: Sequence[str]) -> list[Source]:
    """Sources given on the command line (URLs or paths), named after their host or file."""
    from newsletter.render import hostname

    out: list[Source] = []
    used: set[str] = set()
    for arg in args:
        base = hostname(arg) or Path(arg).stem or "source"
        name = base
        n = 2
        while name in used:
            name = f"{base}-{n}"
            n += 1
        used.add(name)
        out.append(Source(name=name, url=arg))
    return out


def fetch_settings(settings: Settings) -> FetchSettings:
    f = settings.fetch
    return FetchSettings(
        concurrency=f.concurrency,
        per_host=f.per_host,
        timeout=f.timeout,
        max_bytes=f.max_bytes,
        user_agent=f.user_agent,
    )


PARSE_WORKERS = 2
"""Parser processes (at most one per core): parsing and sanitizing are CPU work, and
processes, unlike threads, run it in parallel with each other and with the downloads."""
WRITE_EVERY_ENTRIES = 2000
WRITE_EVERY_SECONDS = 1.0
"""Outcomes are written in one transaction per batch: when this many new entries wait,
or this long after the last write (so progress stays live), and at the end."""

_ParseOutcome = tuple[ParsedSource | None, str | None]


def _parse_pool() -> Executor:
    """Worker processes for parsing; worker threads where processes cannot be had."""
    import multiprocessing
    import os
    import sys
    import threading
    from concurrent.futures import ProcessPoolExecutor

    # Loaded here, before any fork: forked workers then start with the parsers imported.
    import newsletter.parse  # noqa: F401

    workers = max(1, min(PARSE_WORKERS, os.cpu_count() or 1))
    methods = multiprocessing.get_all_start_methods()
    # fork starts workers at once, but only a single-threaded process forks safely (the
    # daemon has threads): otherwise forkserver, then the platform's default.
    if sys.platform == "linux" and "fork" in methods and threading.active_count() == 1:
        method: str | None = "fork"
    else:
        method = "forkserver" if "forkserver" in methods else None
    try:
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
    except (OSError, ImportError, NotImplementedError, ValueError):
        return ThreadPoolExecutor(workers, thread_name_prefix="parse")


class _Recorder:
    """Collects each source's outcome as it arrives and writes them in batches: entries
    and source states of a batch in one transaction. Reports are emitted once written
    (their count of new entries is known then)."""

    def __init__(
        self,
        store: Store,
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
        self.new: dict[str, list[Entry]] = {}
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
            self.new.setdefault(e.source, []).append(e)
        for sr in self.waiting:
            if sr.status == "ok":
                sr = replace(sr, new=len(self.new.get(sr.name, ())))
            self.done[sr.name] = sr
            if self.on_progress:
                self.on_progress(sr)
        self.entries, self.updates, self.waiting = [], {}, []
        self.last_write = time.monotonic()


async def ingest_async(
    sources: Sequence[Source],
    store: Store,
    settings: FetchSettings,
    *,
    now: datetime,
    on_progress: Callable[[SourceReport], None] | None = None,
    executor: Executor | None = None,
) -> IngestReport:
    """Fetch every source concurrently, parse off the event loop, store new entries.

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
        from newsletter.parse import parse_outcome

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
        await fetch_all(requests, settings, on_result=on_result)
        await asyncio.gather(*parsing)
        recorder.flush()
    finally:
        for task in parsing:
            task.cancel()
        if own_pool and pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    skipped = list(report.sources)
    report.sources = skipped + [recorder.done[r.source] for r in requests]
    report.new_entries = [e for r in requests for e in recorder.new.get(r.source, ())]
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
    store: Store,
    settings: FetchSettings,
    *,
    now: datetime,
    on_progress: Callable[[SourceReport], None] | None = None,
) -> IngestReport:
    """Synchronous wrapper of ``ingest_async``."""
    done: list[IngestReport] = []

    async def run() -> None:
        done.append(await ingest_async(sources, store, settings, now=now, on_progress=on_progress))

    # The report is handed over outside the main task on purpose: when asyncio.run
    # restores the SIGINT handler, Python 3.11 builds the repr of the finished main task,
    # result included, which for 10,000 new entries takes half a second.
    asyncio.run(run())
    return done[0]


def digest_options(
    cfg: DigestConfig,
    *,
    max_items: int | None = None,
    interests: Sequence[str] = (),
    topics: Sequence[str] = (),
) -> DigestOptions:
    """DigestOptions from a digest's configuration (and command-line overrides); a
    subscriber's ``interests`` rank higher and ``topics`` (configured topic names) are
    the only ones kept."""
    from newsletter.digest import DigestOptions
    from newsletter.summarize.group import Topic
    from newsletter.summarize.rank import RankSettings

    return DigestOptions(
        name=cfg.name,
        title=cfg.title,
        description=cfg.description,
        link=cfg.link,
        group_by=cfg.group_by,
        topics=tuple(Topic(t.name, t.keywords, t.patterns) for t in cfg.topics),
        max_items=max_items or cfg.max_items,
        max_sections=cfg.max_sections,
        summary_chars=cfg.summary_chars,
        rank=RankSettings(**cfg.ranking.model_dump()),
        interests=tuple(interests),
        only_topics=tuple(topics),
    )


def digest_sources(settings: Settings, cfg: DigestConfig) -> list[Source]:
    """The sources a digest reads: the ones it names, or every configured source."""
    chosen = [s for s in settings.sources if not cfg.sources or s.name in cfg.sources]
    return [source_from_config(s) for s in chosen]


def select_entries(
    store: Store,
    sources: Sequence[Source],
    *,
    now: datetime,
    since: timedelta | None = None,
) -> list[Entry]:
    """Entries of these sources whose time (published, else first seen) is within
    ``since`` of ``now``; all of them when ``since`` is None."""
    return store.entries(
        sources=[s.name for s in sources],
        since=(now - since) if since is not None else None,
    )


def with_titles(sources: Sequence[Source], store: Store) -> dict[str, Source]:
    """Sources keyed by name, with the feed's own title where the config gives none."""
    from dataclasses import replace

    states = store.source_states()
    out: dict[str, Source] = {}
    for s in sources:
        title = s.title or (states[s.name].title if s.name in states else None)
        out[s.name] = replace(s, title=title) if title else s
    return out


def make_digest(
    store: Store,
    settings: Settings,
    cfg: DigestConfig,
    sources: Sequence[Source],
    *,
    now: datetime,
    since: str | None = None,
    max_items: int | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Digest:
    """Select entries from the store and build the digest (a one-off: nothing recorded)."""
    from newsletter.digest import build_digest

    window = parse_duration(since) if since else None
    entries = select_entries(store, sources, now=now, since=window)
    digest = build_digest(
        entries,
        now=now,
        options=digest_options(cfg, max_items=max_items),
        sources=with_titles(sources, store),
    )
    return with_llm_summaries(digest, settings, store, now=now, on_warning=on_warning)


def with_llm_summaries(
    digest: Digest,
    settings: Settings,
    store: Store,
    *,
    now: datetime,
    on_warning: Callable[[str], None] | None = None,
) -> Digest:
    """The digest with LLM-written TL;DRs and section summaries when ``[llm]`` is enabled
    (cached per entry; any failure keeps the extractive summaries, with one warning)."""
    if not settings.llm.enabled:
        return digest
    from newsletter import llm

    digest, report = llm.summarize_digest_sync(
        digest, settings.llm, store, api_key=llm.api_key_from_env(settings.llm), now=now
    )
    warning = report.warning()
    if warning:
        (on_warning or log.warning)(warning)
    return digest


def write_outputs(
    digest: Digest,
    outputs: dict[Format, Path],
    *,
    template_dir: str | None = None,
) -> dict[Format, Path]:
    """Render the digest in each format and write it; returns what was written."""
    env = cached_environment(template_dir)
    written: dict[Format, Path] = {}
    for fmt, path in outputs.items():
        text = render_digest(digest, fmt, env=env)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic: a reader never sees half a file
        written[fmt] = path
    return written


def configured_outputs(cfg: DigestConfig) -> dict[Format, Path]:
    """The output files a digest's config names."""
    out: dict[Format, Path] = {}
    for fmt in FORMATS:
        value = getattr(cfg.outputs, fmt)
        if value:
            out[fmt] = Path(value).expanduser()
    return out


__all__ = [
    "IngestReport",
    "SourceReport",
    "configured_outputs",
    "digest_options",
    "digest_sources",
    "fetch_settings",
    "ingest",
    "ingest_async",
    "make_digest",
    "select_entries",
    "source_from_config",
    "sources_from_args",
    "with_llm_summaries",
    "with_titles",
    "write_outputs",
]
