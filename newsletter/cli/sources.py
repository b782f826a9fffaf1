"""``newsletter sources``: list, import (OPML) and export the configured sources."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsletter.cli.common import (
    config_option,
    handle_errors,
    load_settings,
    open_store,
    plural,
    warn,
)
from newsletter.errors import ConfigError

if TYPE_CHECKING:
    pass


@click.group()
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


@sources.command("add")
@click.argument("url")
@click.option("--name", default=None, help="The source's name (default: from its address).")
@config_option
@handle_errors
def sources_add(url: str, name: str | None, config_path: Path | None) -> None:
    """Add the feed at URL to the config. URL may be a site's page: its feed is found
    (a <link rel="alternate"> of the page, else /feed, /rss.xml, /atom.xml, /index.xml...).
    """
    from newsletter.services.digests import sources_from_args
    from newsletter.sources.discover import discover_feed

    settings = load_settings(config_path)
    found = discover_feed(url, settings.fetch)
    if found.feed_url != url:
        click.echo(f"{url}: found its feed at {found.feed_url}", err=True)
    if any(s.url == found.feed_url for s in settings.sources):
        raise ConfigError(
            f"{found.feed_url} is already configured", path=settings.path, setting="sources"
        )
    taken = {s.name for s in settings.sources}
    if name is not None and name in taken:
        raise ConfigError(f"a source named {name!r} already exists", setting="--name")
    base = name or sources_from_args([found.feed_url])[0].name
    chosen, n = base, 2
    while chosen in taken:
        chosen, n = f"{base}-{n}", n + 1
    lines = ["[[sources]]", f"name = {_toml_str(chosen)}", f"url = {_toml_str(found.feed_url)}"]
    if found.title:
        lines.append(f"title = {_toml_str(found.title)}")
    _append(settings.path, "\n".join(lines) + "\n")
    click.echo(f"added {chosen}: {found.feed_url}")


def _append(path: str | None, text: str) -> None:
    """Append TOML to the config file; the file is put back as it was if it would no
    longer be valid."""
    from newsletter.config import load_config

    if path is None:
        raise ConfigError("needs a config file", setting="--config")
    target = Path(path)
    before = target.read_text(encoding="utf-8")
    target.write_text(before.rstrip("\n") + "\n\n" + text, encoding="utf-8")
    try:
        load_config(target)
    except ConfigError:
        target.write_text(before, encoding="utf-8")
        raise


@sources.command("import")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
@click.option(
    "--write/--print",
    default=False,
    help="Append the new sources to the config file (default: print TOML to stdout).",
)
@click.option(
    "--discover",
    is_flag=True,
    help="Fetch each URL and, for a site's page, use the feed it names (autodiscovery).",
)
@handle_errors
def sources_import(opml_file: Path, config_path: Path | None, write: bool, discover: bool) -> None:
    """Import sources from an OPML file as [[sources]] TOML entries.

    Sources whose URL or name is already configured are left out.
    """
    from dataclasses import replace

    from newsletter.errors import SourceError
    from newsletter.sources.discover import discover_feed
    from newsletter.sources.opml import opml_warnings, read_opml

    settings = load_settings(config_path, required=write)
    found = read_opml(opml_file.read_bytes(), path=str(opml_file))
    if discover:
        resolved = []
        for s in found:
            try:
                resolved.append(replace(s, url=discover_feed(s.url, settings.fetch).feed_url))
            except SourceError as exc:
                warn(f"{s.name}: {exc}; kept as it is")
                resolved.append(s)
        found = resolved
    for warning in opml_warnings(found):
        click.echo(f"warning: {warning}", err=True)
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
        click.echo(f"added {plural(added, 'source')} to {target}", err=True)
    else:
        click.echo(text, nl=False)
        click.echo(
            f"{plural(added, 'new source')} ({len(found) - added} already configured)", err=True
        )


def _toml_str(value: str) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


@sources.command("export")
@config_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the OPML to this file instead of stdout.",
)
@handle_errors
def sources_export(config_path: Path | None, output: Path | None) -> None:
    """Export the configured sources as OPML 2.0 (stdout or --output)."""
    from newsletter.sources.opml import write_opml

    settings = load_settings(config_path)
    data = write_opml([s.to_source() for s in settings.sources])
    if output:
        output.write_bytes(data)
        click.echo(f"wrote {plural(len(settings.sources), 'source')} to {output}", err=True)
    else:
        sys.stdout.buffer.write(data)


COMMANDS = (sources,)
"""The commands this module adds to ``newsletter`` (see ``newsletter.cli.LAZY_COMMANDS``)."""
