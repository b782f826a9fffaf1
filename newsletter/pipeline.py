"""The pipeline's I/O shell after fetching: select entries for a digest, build it, write
its outputs. The pure stages (summarize, digest, render) are called from here; the CLI and
the scheduler call these functions. Fetching itself is ``newsletter.ingest``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.config import DigestConfig, Settings, parse_duration
from newsletter.ingest import source_from_config
from newsletter.models import Digest, Entry, Source
from newsletter.render import FORMATS, Format, cached_environment, render_digest
from newsletter.store import Store

if TYPE_CHECKING:
    # The summarizer pulls in scikit-learn, which takes a second or more to import:
    # `newsletter fetch` never needs it, so it is imported only when a digest is built.
    from newsletter.digest import DigestOptions

log = logging.getLogger("newsletter")


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
    "configured_outputs",
    "digest_options",
    "digest_sources",
    "make_digest",
    "select_entries",
    "sources_from_args",
    "with_llm_summaries",
    "with_titles",
    "write_outputs",
]
