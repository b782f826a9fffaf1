"""The command line: thin click commands that parse options, call one pipeline function
and turn the project's errors into a clear message and an exit code.

Exit codes: 0 done (even when some sources failed: each is a warning), 1 nothing could be
done (no source readable, a recipient failed for good), 2 usage or configuration error.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from newsletter import __version__
from newsletter.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    config_option,
    fail,
    handle_errors,
    load_settings,
    open_store,
    warn,
)
from newsletter.errors import ConfigError, TemplateError
from newsletter.models import Source
from newsletter.render import FORMATS, Format, now_utc, render_digest

if TYPE_CHECKING:
    from newsletter.fetch import FetchSettings
    from newsletter.ingest import SourceStore
    from newsletter.store import Store


def _is_tty() -> bool:
    return sys.stderr.isatty()


LAZY_COMMANDS: dict[str, str] = {
    "subscribers": "newsletter.cli_mail",
    "send": "newsletter.cli_mail",
    "preview": "newsletter.cli_mail",
    "run": "newsletter.cli_run",
    "serve": "newsletter.cli_run",
    "rss": "newsletter.cli_run",
}
"""Commands that live in their own modules (each listed in that module's ``COMMANDS``),
by name: imported when that command runs or the full list is asked for."""


class LazyGroup(click.Group):
    """A group that imports the modules of ``LAZY_COMMANDS`` only when one of their
    commands is needed.

    The mail and scheduler commands pull in email validation, SMTP, the outbox and the
    scheduler: a tenth of a second or more that ``newsletter fetch`` never needs.
    ``commands`` (all of them, for tests and documentation) imports every module.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lazy: dict[str, str] = {}
        self._own: MutableMapping[str, click.Command] = {}
        super().__init__(*args, **kwargs)

    @property
    def commands(self) -> MutableMapping[str, click.Command]:
        for module in sorted(set(self._lazy.values())):
            self._load(module)
        return self._own

    @commands.setter
    def commands(self, value: MutableMapping[str, click.Command]) -> None:
        self._own = value

    def add_lazy(self, names: dict[str, str]) -> None:
        """Register command names whose module is imported when first needed."""
        self._lazy.update(names)

    def _load(self, module: str) -> None:
        for name in [n for n, m in self._lazy.items() if m == module]:
            del self._lazy[name]
        for command in importlib.import_module(module).COMMANDS:
            self._own[command.name or ""] = command

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self._lazy.get(cmd_name)
        if module is not None:
            self._load(module)
        return self._own.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self._own, *self._lazy})


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newsletter")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail to stderr.")
def main(verbose: bool) -> None:
    """Digest newsletters from the feeds you follow.

    Point it at RSS, Atom, JSON Feed sources and paper lists; it fetches new entries,
    merges duplicates, groups and ranks them, and writes a digest as Markdown, HTML, text,
    RSS or Atom, or sends it by email on a schedule.

    \b
    Quick start:
      newsletter digest https://example.org/feed.xml
      newsletter digest --config config/demo.toml
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


# -- digest ------------------------------------------------------------------------------


@main.command()
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
@click.option("--since", help="Only entries newer than this, e.g. 36h, 7d, 2w.")
@click.option("--max-items", type=click.IntRange(1, 10_000), help="At most this many items.")
@click.option("--no-fetch", is_flag=True, help="Use stored entries only; do not fetch.")
@click.option("--explain", is_flag=True, help="Print each item's score breakdown to stderr.")
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
) -> None:
    """Write a one-off digest of SOURCES (URLs or paths) or of the configured sources.

    With SOURCES and no config nothing else is needed: the digest goes to stdout (or
    --output). With a config and neither --format nor --output, every output file the
    digest configures is written.
    """
    from newsletter import ingest, pipeline
    from newsletter.config import parse_duration, settings_from_dict

    if since:
        try:
            parse_duration(since)
        except ValueError as exc:
            raise ConfigError(str(exc), setting="--since", example="--since 36h") from None
    one_off = bool(sources)
    # A one-off digest of given sources reads no config file, but NEWSLETTER_* overrides
    # (template folder, user agent, timeouts...) still apply.
    settings = (
        load_settings(config_path) if (config_path or not one_off) else settings_from_dict({})
    )
    cfg = settings.digest(digest_name)
    now = now_utc()
    if one_off:
        chosen: list[Source] = pipeline.sources_from_args(sources)
        # A one-off digest of given sources leaves no trace: an in-memory database.
        store = open_store(settings, "sqlite://" if not config_path else None)
    else:
        chosen = pipeline.digest_sources(settings, cfg)
        if not chosen:
            raise ConfigError(
                "no sources configured",
                path=settings.path,
                setting="sources",
                example='[[sources]] name = "arxiv" url = "https://rss.arxiv.org/rss/cs.AI"',
            )
        store = open_store(settings)
    with store:
        if not no_fetch:
            report = ingest.ingest(
                chosen,
                store,
                ingest.fetch_settings(settings),
                now=now,
                on_progress=_progress_printer(len(chosen), quiet=True),
            )
            for f in report.failures:
                warn(f"{f.name} ({f.url}): {f.error}")
            if report.readable == 0 and store.count_entries() == 0:
                fail("no source could be read", EXIT_FAILED)
        if one_off and not config_path:
            # No config names the digest: call it after what it reads.
            cfg = cfg.model_copy(update={"title": _one_off_title(chosen, store)})
        result = pipeline.make_digest(
            store,
            settings,
            cfg,
            chosen,
            now=now,
            since=since,
            max_items=max_items,
            on_warning=warn,
        )
    if explain:
        from newsletter.summarize.rank import explain as explain_item

        ranked = sorted(
            ((item, section.title) for section in result.sections for item in section.items),
            key=lambda pair: -pair[0].score,
        )
        for n, (item, section_title) in enumerate(ranked, start=1):
            click.echo(
                f"{n:>3}. {explain_item(item)}  [{section_title[:30]}] {item.entry.title[:60]}",
                err=True,
            )
    if fmt is None and output is None and not one_off:
        outputs = pipeline.configured_outputs(cfg)
        if outputs:
            written = pipeline.write_outputs(result, outputs, template_dir=settings.template_dir)
            for f_, path in written.items():
                click.echo(f"wrote {f_:<8} {path}", err=True)
            click.echo(f"{result.item_count} items in {len(result.sections)} sections", err=True)
            return
    fmt = fmt or _format_from_suffix(output) or "markdown"
    if output is not None:
        written = pipeline.write_outputs(result, {fmt: output}, template_dir=settings.template_dir)
        click.echo(f"wrote {fmt} digest to {output} ({result.item_count} items)", err=True)
        return
    text = render_digest(result, fmt, template_dir=settings.template_dir)
    click.echo(text, nl=not text.endswith("\n"))


def _one_off_title(chosen: Sequence[Source], store: Store) -> str:
    """A one-off digest of one source is named after the feed's own title."""
    if len(chosen) == 1:
        state = store.source_state(chosen[0].name)
        if state and state.title:
            return state.title
        return f"Digest of {chosen[0].name}"
    return f"Digest of {len(chosen)} sources"


def _format_from_suffix(path: Path | None) -> Format | None:
    if path is None:
        return None
    return cast(
        Format | None,
        {
            ".md": "markdown",
            ".markdown": "markdown",
            ".html": "html",
            ".htm": "html",
            ".txt": "text",
            ".rss": "rss",
            ".atom": "atom",
        }.get(path.suffix.lower()),
    )


# -- fetch -------------------------------------------------------------------------------


def _progress_printer(total: int, *, quiet: bool = False) -> Callable[[Any], None]:
    """Progress on stderr: a line per source when not a terminal (or quiet: failures
    only, reported later), a rich progress bar on a terminal."""
    done = 0

    def plain(sr: Any) -> None:
        nonlocal done
        done += 1
        if quiet:
            return
        detail = f"{sr.new} new of {sr.entries}" if sr.status == "ok" else (sr.error or "")
        if sr.status == "not_modified":
            detail = "not modified"
        click.echo(f"[{done}/{total}] {sr.name}: {sr.status} {detail}".rstrip(), err=True)

    return plain


@main.command()
@config_option
@click.option("--source", "only", multiple=True, help="Fetch only this source (repeatable).")
@handle_errors
def fetch(config_path: Path | None, only: tuple[str, ...]) -> None:
    """Fetch every configured source and store new entries.

    Shows progress (a bar on a terminal, a line per source otherwise) and a summary table.
    Exit 1 when no source could be read.
    """
    from newsletter.fetchplan import load_fetch_plan
    from newsletter.fetchstate import LazyStore

    # The validated settings a fetch needs, cached: a warm run loads no pydantic.
    plan = load_fetch_plan(config_path)
    chosen = list(plan.sources)
    if only:
        unknown = sorted(set(only) - {s.name for s in chosen})
        if unknown:
            raise ConfigError(
                f"unknown source {', '.join(unknown)}",
                path=plan.path,
                setting="--source",
                example=f"--source {chosen[0].name}" if chosen else None,
            )
        chosen = [s for s in chosen if s.name in only]
    if not chosen:
        raise ConfigError(
            "no sources configured",
            path=plan.path or str(Path("config.toml")),
            setting="sources",
            example='[[sources]]\nname = "arxiv"\nurl = "https://rss.arxiv.org/rss/cs.AI"',
        )
    # Nor SQLAlchemy, unless there are entries to store: see newsletter.fetchstate.
    with LazyStore(plan.database_url) as store:
        report = _run_with_progress(chosen, store, plan.fetch)
    _print_fetch_table(report)
    for f in report.failures:
        warn(f"{f.name} ({f.url}): {f.error}")
    if report.readable == 0:
        fail("no source could be read", EXIT_FAILED)


def _run_with_progress(chosen: Sequence[Source], store: SourceStore, fs: FetchSettings) -> Any:
    from newsletter import ingest

    now = now_utc()
    if not _is_tty():
        return ingest.ingest(chosen, store, fs, now=now, on_progress=_progress_printer(len(chosen)))
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
    title = f"Fetched {len(report.sources)} sources in {report.seconds:.1f}s"
    rows = [
        (s.name, s.status, str(s.entries), str(s.new), s.error or s.parser) for s in report.sources
    ]
    total_new = sum(s.new for s in report.sources)
    if not _is_tty():
        # Plain columns for logs and pipes: rich would take longer to import and lay out
        # 200 rows than the rest of a warm fetch.
        click.echo(
            _plain_table(title, ("source", "status", "entries", "new", "note"), rows), err=True
        )
        click.echo(f"{total_new} new entries", err=True)
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
    console.print(f"{total_new} new entries")


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


# -- check -------------------------------------------------------------------------------


@main.command()
@config_option
@handle_errors
def check(config_path: Path | None) -> None:
    """Validate the configuration: errors name the file, line and setting, with a valid
    example. Also checks that the templates load."""
    from newsletter.render import make_environment

    settings = load_settings(config_path, required=True)
    env = make_environment(settings.template_dir)
    for name in ("digest.md.j2", "digest.html.j2", "digest.txt.j2"):
        try:
            env.get_template(name)
        except Exception as exc:
            raise TemplateError(f"template {name}: {exc}") from None
    click.echo(
        f"{settings.path}: ok ({len(settings.sources)} sources, {len(settings.digests)} digests)"
    )


# -- sources -----------------------------------------------------------------------------


@main.group()
def sources() -> None:
    """List configured sources, import them from OPML, export them to OPML."""


@sources.command("list")
@config_option
@handle_errors
def sources_list(config_path: Path | None) -> None:
    """List configured sources with their stored state (status, errors, last fetch)."""
    from rich.console import Console
    from rich.table import Table

    settings = load_settings(config_path)
    with open_store(settings) as store:
        states = store.source_states()
    table = Table()
    for col in ("name", "url", "status", "errors", "last fetched", "last error"):
        table.add_column(col, overflow="fold")
    for s in settings.sources:
        st = states.get(s.name)
        table.add_row(
            s.name,
            s.url,
            st.status if st else "new",
            str(st.error_count) if st else "0",
            f"{st.last_fetched:%Y-%m-%d %H:%M}" if st and st.last_fetched else "",
            (st.last_error or "") if st else "",
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@sources.command("import")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
@click.option(
    "--write/--print",
    default=False,
    help="Append the new sources to the config file (default: print TOML to stdout).",
)
@handle_errors
def sources_import(opml_file: Path, config_path: Path | None, write: bool) -> None:
    """Import sources from an OPML file as [[sources]] TOML entries.

    Sources whose URL or name is already configured are left out.
    """
    from newsletter.opml import read_opml

    settings = load_settings(config_path)
    found = read_opml(opml_file.read_bytes(), path=str(opml_file))
    known_urls = {s.url for s in settings.sources}
    known_names = {s.name for s in settings.sources}
    toml_parts = []
    added = 0
    for s in found:
        if s.url in known_urls:
            continue
        name = s.name
        n = 2
        while name in known_names:
            name = f"{s.name}-{n}"
            n += 1
        known_names.add(name)
        known_urls.add(s.url)
        added += 1
        lines = ["[[sources]]", f"name = {_toml_str(name)}", f"url = {_toml_str(s.url)}"]
        if s.title:
            lines.append(f"title = {_toml_str(s.title)}")
        if s.kind != "auto":
            lines.append(f"kind = {_toml_str(s.kind)}")
        if s.weight != 1.0:
            lines.append(f"weight = {s.weight}")
        toml_parts.append("\n".join(lines))
    text = "\n\n".join(toml_parts) + ("\n" if toml_parts else "")
    if write:
        target = Path(settings.path) if settings.path else None
        if target is None:
            raise ConfigError(
                "--write needs a config file",
                setting="--config",
                example="newsletter sources import feeds.opml --config my.toml --write",
            )
        with target.open("a", encoding="utf-8") as fh:
            fh.write("\n" + text)
        from newsletter.config import load_config

        load_config(target)  # the file must still be valid
        click.echo(f"added {added} sources to {target}", err=True)
    else:
        click.echo(text, nl=False)
        click.echo(f"{added} new sources ({len(found) - added} already configured)", err=True)


def _toml_str(value: str) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


@sources.command("export")
@config_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def sources_export(config_path: Path | None, output: Path | None) -> None:
    """Export the configured sources as OPML 2.0 (stdout or --output)."""
    from newsletter.ingest import source_from_config
    from newsletter.opml import write_opml

    settings = load_settings(config_path)
    data = write_opml([source_from_config(s) for s in settings.sources])
    if output:
        output.write_bytes(data)
        click.echo(f"wrote {len(settings.sources)} sources to {output}", err=True)
    else:
        sys.stdout.buffer.write(data)


__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "handle_errors",
    "load_settings",
    "main",
    "open_store",
]


# Commands that live in their own modules (which import the helpers above) are imported
# when they run: see LazyGroup.
main.add_lazy(LAZY_COMMANDS)
