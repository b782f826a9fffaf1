"""Digests from the store: the sources a digest reads, the entries it selects, and the
digest built from them (a one-off for the ``digest`` command), with the optional LLM
summaries. ``services.editions`` builds every edition's digest (mail and archive page)
from the same pieces.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path

from newsletter.config import DigestConfig, Settings, parse_duration
from newsletter.models import Digest, Entry, Source
from newsletter.services.notes import with_note_at
from newsletter.store.database import Store

log = logging.getLogger("newsletter")


def parse_since(value: str, now: datetime) -> timedelta:
    """``--since``: a duration (``36h``, ``7d``) or a date or time (``2026-11-01``,
    ``2026-11-01T08:00``, UTC unless it names its offset), as the time back from ``now``.
    ValueError otherwise."""
    try:
        return parse_duration(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a duration like 36h or 7d nor a date like 2026-11-01"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(timedelta(0), now - when)


def sources_from_args(args: Sequence[str]) -> list[Source]:
    """Sources given on the command line (URLs or paths), named after their host or file."""
    from newsletter.render.templates import hostname

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


def digest_sources(settings: Settings, cfg: DigestConfig) -> list[Source]:
    """The sources a digest reads: the ones it names, or every configured source."""
    chosen = [s for s in settings.sources if not cfg.sources or s.name in cfg.sources]
    return [s.to_source() for s in chosen]


def with_titles(sources: Sequence[Source], store: Store) -> dict[str, Source]:
    """Sources keyed by name, with the feed's own title where the config gives none."""
    states = store.source_states()
    out: dict[str, Source] = {}
    for s in sources:
        title = s.title or (states[s.name].title if s.name in states else None)
        out[s.name] = replace(s, title=title) if title else s
    return out


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


def allow_named_files(settings: Settings, sources: Sequence[Source]) -> Settings:
    """The settings with the local files named on the command line added to
    ``fetch.local_root``: a person who names a file means it to be read, while sources
    from a config stay confined to its folder. Only those files, not their folders."""
    from newsletter.sources.localfiles import local_path

    named = []
    for source in sources:
        path = local_path(source.url)
        if path is not None:
            try:
                named.append(str(path.expanduser().resolve()))
            except (OSError, RuntimeError, ValueError):
                continue  # the fetch names the problem
    if not named:
        return settings
    roots = settings.fetch.local_root
    current = (roots,) if isinstance(roots, str) else tuple(roots or ())
    if roots is None:
        return settings  # no confinement to widen
    fetch = settings.fetch.model_copy(update={"local_root": (*current, *named)})
    return settings.model_copy(update={"fetch": fetch})


def one_off_title(sources: Sequence[Source], store: Store) -> str:
    """The title of a digest no config names, counting the sources that are really in it
    (pass :func:`contributing`): the feed's own title for one source."""
    if len(sources) == 1:
        state = store.source_state(sources[0].name)
        if state and state.title:
            return state.title
        return f"Digest of {sources[0].label}"
    return f"Digest of {len(sources)} sources"


def contributing(digest: Digest, sources: Sequence[Source]) -> list[Source]:
    """The sources with at least one entry in the digest (as an item or a duplicate)."""
    return [s for s in sources if s.name in digest.sources]


def retitled(digest: Digest, title: str) -> Digest:
    """The digest under another title (and a section named after the old one, as
    ``group_by = "none"`` names its only section, renamed with it)."""
    sections = tuple(
        replace(s, title=title) if s.title == digest.title else s for s in digest.sections
    )
    return replace(digest, title=title, sections=sections)


@dataclass(frozen=True, slots=True)
class Silent:
    """A source that contributed nothing to a digest, and why."""

    source: Source
    label: str
    why: str
    had_candidates: bool
    """Whether it had entries in the window (they were outranked)."""

    @property
    def line(self) -> str:
        """What ``digest`` prints on stderr."""
        return f"{self.label} ({self.source.url}): nothing in the digest: {self.why}"


def silent_sources(
    store: Store,
    sources: Sequence[Source],
    digest: Digest,
    *,
    now: datetime,
    since: str | None = None,
    failed: Mapping[str, str] | None = None,
) -> list[Silent]:
    """The sources that contributed nothing to ``digest``, each with why: it failed to
    fetch (with the reason), had no entries, had only entries older than ``since``, or
    none of its entries ranked among the items kept."""
    failed = failed or {}
    window = parse_since(since, now) if since else None
    out = []
    for source in sources:
        if source.name in digest.sources:
            continue
        label = source.title or _stored_title(store, source) or source.name
        every = len(store.entries(sources=[source.name]))
        candidates = False
        if source.name in failed and not every:
            why = f"failed to fetch ({failed[source.name]})"
        elif not every:
            why = "no entries"
        elif window is not None and not store.entries(sources=[source.name], since=now - window):
            why = f"all {every} entries older than --since {since}"
        else:
            candidates = True
            why = f"none of its {every} entries ranked among the {digest.item_count} kept"
        out.append(Silent(source, label, why, candidates))
    return out


def _stored_title(store: Store, source: Source) -> str | None:
    state = store.source_state(source.name)
    return state.title if state else None


def feed_urls(
    settings: Settings, cfg: DigestConfig, files: Mapping[str, Path] | None = None
) -> dict[str, str]:
    """The public URL of the digest's RSS and Atom feeds (their ``rel="self"`` link): the
    web ``base_url`` (when configured) and the web app's feed path, else the URL of the
    file a feed is written to (``files``), else none."""
    from newsletter.render.archive import FeedFormat, feed_path

    out: dict[str, str] = {}
    files = files or {}
    fmts: tuple[FeedFormat, ...] = ("rss", "atom")
    for fmt in fmts:
        if "base_url" in settings.web.model_fields_set:
            out[fmt] = settings.web.base_url.rstrip("/") + feed_path(cfg.name, fmt)
        elif fmt in files:
            out[fmt] = files[fmt].expanduser().resolve().as_uri()
    return out


def from_name(settings: Settings) -> str:
    """The display name of the digest's sender (``mail.from_address``), else its address."""
    name, address = parseaddr(settings.mail.from_address)
    return name or address


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
    """Select entries from the store and build the digest (a one-off: nothing recorded).
    ``since`` (a duration like ``36h`` or a date like ``2026-11-01``) and ``max_items``
    override the configuration."""
    from newsletter.summarize.digest import build_digest

    window = parse_since(since, now) if since else None
    if max_items:
        cfg = cfg.model_copy(update={"max_items": max_items})
    entries = select_entries(store, sources, now=now, since=window)
    digest = build_digest(entries, now=now, config=cfg, sources=with_titles(sources, store))
    digest = replace(digest, author=from_name(settings))
    digest = with_note_at(digest, cfg, now)  # the editor's note (services.notes)
    if digest.dropped:
        (on_warning or log.warning)(
            f"{digest.dropped} older entries left out (over max_candidates={cfg.max_candidates}"
            f" or max_candidates_per_source={cfg.max_candidates_per_source})"
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
    from newsletter.services import llm

    digest, report = llm.summarize_digest_sync(
        digest, settings.llm, store, api_key=llm.api_key_from_env(settings.llm), now=now
    )
    warning = report.warning()
    if warning:
        (on_warning or log.warning)(warning)
    return digest
