"""``newsletter fetch``: fetch every configured source, with progress and a summary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from newsletter.cli.common import (
    EXIT_FAILED,
    config_option,
    fail,
    handle_errors,
    is_tty,
    load_settings,
    open_store,
    plural,
    progress_printer,
    warn,
)
from newsletter.clock import now_utc
from newsletter.errors import ConfigError
from newsletter.models import Source

if TYPE_CHECKING:
    from newsletter.config import FetchConfig
    from newsletter.services.ingest import SourceStore


@click.command()
@config_option
@click.option("--source", "only", multiple=True, help="Fetch only this source (repeatable).")
@handle_errors
def fetch(config_path: Path | None, only: tuple[str, ...]) -> None:
    """Fetch every configured source and store new entries.

    Shows progress (a bar on a terminal, a line per source otherwise) and a summary table.
    Exit 1 when no source could be read.
    """

    settings = load_settings(config_path)
    chosen = [s.to_source() for s in settings.sources]
    if only:
        unknown = sorted(set(only) - {s.name for s in chosen})
        if unknown:
            raise ConfigError(
                f"unknown source {', '.join(unknown)}",
                path=settings.path,
                setting="--source",
                example=f"--source {chosen[0].name}" if chosen else None,
            )
        chosen = [s for s in chosen if s.name in only]
    if not chosen:
        raise ConfigError(
            "no sources configured",
            path=settings.path or str(Path("config.toml")),
            setting="sources",
            example='[[sources]]\nname = "arxiv"\nurl = "https://rss.arxiv.org/rss/cs.AI"',
        )
    with open_store(settings) as store:
        report = _run_with_progress(chosen, store, settings.fetch)
    _print_fetch_table(report)
    for f in report.failures:
        warn(f"{f.name} ({f.url}): {f.error}")
    if report.readable == 0:
        fail("no source could be read", EXIT_FAILED)


def _run_with_progress(chosen: Sequence[Source], store: SourceStore, fs: FetchConfig) -> Any:
    from newsletter.services import ingest

    now = now_utc()
    if not is_tty():
        return ingest.ingest(chosen, store, fs, now=now, on_progress=progress_printer(len(chosen)))
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("fetching"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        transient=True,
    ) as progress:
        task = progress.add_task("", total=len(chosen))

        def advance(sr: Any) -> None:
            progress.update(task, advance=1, description=sr.name)

        return ingest.ingest(chosen, store, fs, now=now, on_progress=advance)


def _print_fetch_table(report: Any) -> None:
    title = f"Fetched {plural(len(report.sources), 'source')} in {report.seconds:.1f}s"
    rows = [
        (s.name, s.status, str(s.entries), str(s.new), s.error or s.parser) for s in report.sources
    ]
    total_new = sum(s.new for s in report.sources)
    if not is_tty():
        # Plain columns for logs and pipes: rich would take longer to import and lay out
        # 200 rows than the rest of a warm fetch.
        click.echo(
            _plain_table(title, ("source", "status", "entries", "new", "note"), rows), err=True
        )
        click.echo(f"{plural(total_new, 'new entry', 'new entries')}", err=True)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    table = Table(title=title)
    table.add_column("source")
    table.add_column("status")
    table.add_column("entries", justify="right")
    table.add_column("new", justify="right")
    table.add_column("note", overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"{plural(total_new, 'new entry', 'new entries')}")


def _plain_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A title line and space-aligned columns (numbers right-aligned, the last column
    left as it is)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    right = {2, 3}
    lines = [title]
    for r in [header, *rows]:
        cells = [r[i].rjust(w) if i in right else r[i].ljust(w) for i, w in enumerate(widths)]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return "\n".join(lines)


COMMANDS = (fetch,)
"""The commands this module adds to ``newsletter`` (see ``newsletter.cli.LAZY_COMMANDS``)."""
