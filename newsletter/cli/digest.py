"""``newsletter digest``: a one-off digest of given sources or of a configured digest."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import click

from newsletter.cli.common import (
    EXIT_FAILED,
    config_option,
    fail,
    handle_errors,
    load_settings,
    note_option,
    open_store,
    plural,
    progress_printer,
    warn,
    with_note_file,
)
from newsletter.clock import now_utc
from newsletter.config import RankingConfig, Settings
from newsletter.errors import ConfigError
from newsletter.models import Digest, Source
from newsletter.render.digest import FORMATS, Format, render_digest


@click.command()
@click.argument("sources", nargs=-1)
@config_option
@click.option("--digest", "digest_name", help="Which configured digest (default: the first).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format (default: markdown, or the configured outputs).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
@click.option(
    "--since", help="Only entries newer than this: a duration (36h, 7d, 2w) or a date (2026-11-01)."
)
@click.option("--max-items", type=click.IntRange(1, 10_000), help="At most this many items.")
@click.option("--no-fetch", is_flag=True, help="Use stored entries only; do not fetch.")
@click.option("--explain", is_flag=True, help="Print each item's score breakdown to stderr.")
@note_option
@handle_errors
def digest(
    sources: tuple[str, ...],
    config_path: Path | None,
    digest_name: str | None,
    fmt: Format | None,
    output: Path | None,
    since: str | None,
    max_items: int | None,
    no_fetch: bool,
    explain: bool,
    note: Path | None,
) -> None:
    """Write a one-off digest of SOURCES (URLs or paths) or of the configured sources.

    With SOURCES and no config nothing else is needed: the digest goes to stdout (or
    --output). With a config and neither --format nor --output, every output file the
    digest configures is written.
    """
    from newsletter.config import settings_from_dict
    from newsletter.services import digests, ingest, outputs
    from newsletter.services.digests import parse_since

    if since:
        try:
            parse_since(since, now_utc())
        except ValueError as exc:
            raise ConfigError(
                str(exc), setting="--since", example="--since 36h, or --since 2026-11-01"
            ) from None
    one_off = bool(sources)
    # A one-off digest of given sources reads no config file, but NEWSLETTER_* overrides
    # (template folder, user agent, timeouts...) still apply.
    settings = (
        load_settings(config_path) if (config_path or not one_off) else settings_from_dict({})
    )
    cfg = with_note_file(settings.digest(digest_name), note)
    now = now_utc()
    if one_off:
        chosen: list[Source] = digests.sources_from_args(sources)
        settings = digests.allow_named_files(settings, chosen)
        # A one-off digest of given sources leaves no trace: an in-memory database.
        store = open_store(settings, "sqlite://" if not config_path else None)
    else:
        chosen = digests.digest_sources(settings, cfg)
        if not chosen:
            raise ConfigError(
                "no sources configured",
                path=settings.path,
                setting="sources",
                example='[[sources]] name = "arxiv" url = "https://rss.arxiv.org/rss/cs.AI"',
            )
        store = open_store(settings)
    failed: dict[str, str] = {}
    with store:
        if not no_fetch:
            report = ingest.ingest(
                chosen,
                store,
                settings.fetch,
                now=now,
                on_progress=progress_printer(len(chosen), quiet=True),
            )
            failures = list(report.failures)
            readable = report.readable
            if one_off and failures:
                # A site's address instead of its feed: find the feed, as feed readers do.
                found = _discovered(chosen, [f.name for f in failures], settings)
                if found:
                    again = ingest.ingest(found, store, settings.fetch, now=now)
                    names = {s.name for s in found}
                    failures = [f for f in failures if f.name not in names]
                    failures += list(again.failures)
                    readable += again.readable
            failed = {f.name: str(f.error) for f in failures}
            if readable == 0 and store.count_entries() == 0:
                for f in failures:
                    warn(f"{f.name} ({f.url}): {f.error}")
                fail("no source could be read", EXIT_FAILED)
        result = digests.make_digest(
            store, settings, cfg, chosen, now=now, since=since, max_items=max_items, on_warning=warn
        )
        for name, error in failed.items():
            if name in result.sources:
                warn(f"{name}: {error} (its stored entries were used)")
        silent = digests.silent_sources(store, chosen, result, now=now, since=since, failed=failed)
        for s in silent:
            warn(s.line)
        if one_off and not config_path:
            # No config names the digest: call it after what is really in it.
            title = digests.one_off_title(digests.contributing(result, chosen), store)
            result = digests.retitled(result, title)
    feed_files = {str(f_): p for f_, p in outputs.configured_outputs(cfg).items()}
    if output is not None:
        feed_files = {str(fmt or outputs.format_for(output)): output}
    result = replace(result, feed_urls=digests.feed_urls(settings, cfg, feed_files))
    if explain:
        with_candidates = len(chosen) - sum(1 for s in silent if not s.had_candidates)
        _explain(
            result,
            cfg.ranking,
            cfg.max_items if max_items is None else max_items,
            with_candidates,
            now,
        )
    if fmt is None and output is None and not one_off:
        configured = outputs.configured_outputs(cfg)
        if configured:
            written = outputs.write_outputs(result, configured, template_dir=settings.template_dir)
            for f_, path in written.items():
                click.echo(f"wrote {f_:<8} {path}", err=True)
            click.echo(
                f"{plural(result.item_count, 'item')} in {plural(len(result.sections), 'section')}",
                err=True,
            )
            return
    fmt = fmt or outputs.format_for(output) or "markdown"
    if output is not None:
        outputs.write_outputs(result, {fmt: output}, template_dir=settings.template_dir)
        click.echo(
            f"wrote {fmt} digest to {output} ({plural(result.item_count, 'item')})", err=True
        )
        return
    text = render_digest(result, fmt, template_dir=settings.template_dir)
    click.echo(text, nl=not text.endswith("\n"))


def _discovered(chosen: list[Source], failed: list[str], settings: Settings) -> list[Source]:
    """The failed web sources whose address is a page that names (or sits beside) a
    feed, with the feed's URL."""
    from dataclasses import replace

    from newsletter.errors import SourceError
    from newsletter.sources.discover import discover_feed

    out = []
    for source in chosen:
        if source.name not in failed or not source.url.startswith(("http://", "https://")):
            continue
        try:
            found = discover_feed(source.url, settings.fetch)
        except SourceError:
            continue
        if found.feed_url != source.url:
            click.echo(f"{source.url}: found its feed at {found.feed_url}", err=True)
            out.append(replace(source, url=found.feed_url))
    return out


def _explain(
    digest: Digest, ranking: RankingConfig, limit: int, sources: int, now: datetime
) -> None:
    """Each item's score breakdown on stderr, best first; then when freshness was
    counted from, and each source's share of the items (with the fair-share cap)."""
    from collections import Counter

    from newsletter.summarize.rank import explain, fair_share, out_of_order, reference_time

    ranked = sorted(
        ((item, section.title) for section in digest.sections for item in section.items),
        key=lambda pair: -pair[0].score,
    )
    for n, (item, section_title) in enumerate(ranked, start=1):
        click.echo(
            f"{n:>3}. {explain(item)}  [{section_title[:30]}] {item.entry.title[:60]}", err=True
        )
    for section in digest.sections:
        for note in out_of_order(section.items):
            click.echo(f"[{section.title[:30]}] {note}", err=True)
    at = reference_time(digest.items, now)
    if at < now:
        click.echo(f"freshness counted from {at:%Y-%m-%d %H:%M} UTC (the newest entry)", err=True)
    share = fair_share(limit, sources, ranking)
    counts = Counter(item.entry.source for item in digest.items)
    cap = f"fair share: at most {share} of {limit} items per source" if share else "no cap"
    click.echo(f"sources ({cap}, {plural(sources, 'source')} with entries):", err=True)
    for name, count in counts.most_common():
        label = digest.sources[name].label if name in digest.sources else name
        note = ""
        if share and count == share:
            note = " (at its share: better items of other sources came first)"
        elif share and count > share:
            note = f" ({count - share} over its share: slots other sources could not fill)"
        click.echo(f"  {label}: {plural(count, 'item')}{note}", err=True)
    if digest.dropped:
        click.echo(f"{digest.dropped} older entries not considered (candidate caps)", err=True)


COMMANDS = (digest,)
"""The commands this module adds to ``newsletter`` (see ``newsletter.cli.LAZY_COMMANDS``)."""
