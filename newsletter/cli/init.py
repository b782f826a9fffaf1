"""``newsletter init``: write a commented starter config.

It asks a couple of questions on a terminal (the first feed, the sender address) and
none otherwise, so scripts and tests get the same file every time. An existing file is
never overwritten without ``--force``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from newsletter.cli.common import config_option, handle_errors
from newsletter.errors import ConfigError

DEFAULT_FEED = "https://rss.arxiv.org/rss/cs.AI"
DEFAULT_FROM = "Newsletter <newsletter@example.org>"

STARTER = """\
# newsletter configuration, written by `newsletter init`.
# Every setting, with its default: config/example.toml in the source (or
# https://github.com/newsletter/newsletter/blob/main/config/example.toml).
# Check it with:  newsletter check --config {path}

# The database (env NEWSLETTER_DATABASE_URL). Default: SQLite in the user's data folder.
# database_url = "sqlite:///newsletter.sqlite"

# Sources: RSS, Atom or JSON Feed URLs, file:// URLs or paths. Add more with
# `newsletter sources add URL` (a site's address works too: its feed is found).
{sources}
# A digest: what goes in, how it is grouped, when it is sent (cron, in its time zone).
[[digests]]
name = "daily"
title = "Daily digest"
schedule = "0 7 * * *"
timezone = "UTC"
# min_items = 1             # wait for this many new items before an edition goes out

[mail]
delivery = "file"           # "file" writes .eml files into mail_dir; "smtp" sends them
mail_dir = "out/mail"
from_address = {from_address}
domain = "example.org"

# [smtp]
# host = "smtp.example.org"
# port = 587
# security = "starttls"
# username = "mailer"       # the password comes from NEWSLETTER_SMTP_PASSWORD only

[web]
base_url = "http://127.0.0.1:8025"   # the public address of `newsletter serve`
"""


def starter_config(path: Path, feeds: list[str], from_address: str) -> str:
    """The text of a starter config reading ``feeds``."""
    from newsletter.services.digests import sources_from_args

    blocks = []
    for source in sources_from_args(feeds):
        blocks.append(
            f"[[sources]]\nname = {json.dumps(source.name)}\nurl = {json.dumps(source.url)}\n"
        )
    return STARTER.format(
        path=path,
        sources="\n".join(blocks),
        from_address=json.dumps(from_address, ensure_ascii=False),
    )


@click.command()
@config_option
@click.option(
    "--source",
    "feeds",
    multiple=True,
    metavar="URL",
    help=f"A feed to read (repeatable; default: {DEFAULT_FEED}).",
)
@click.option("--from", "from_address", default=None, help="The sender address of the emails.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@handle_errors
def init(
    config_path: Path | None, feeds: tuple[str, ...], from_address: str | None, force: bool
) -> None:
    """Write a commented starter config (to --config FILE, else $NEWSLETTER_CONFIG, else
    the user config folder). On a terminal it asks for a feed and the sender address;
    otherwise it asks nothing and uses the options or the defaults."""
    from newsletter.config import load_config
    from newsletter.paths import default_config_path

    path = config_path or default_config_path()
    if path.exists() and not force:
        raise ConfigError(
            "already exists; nothing written (--force overwrites it)",
            path=str(path),
            example=f"newsletter check --config {path}",
        )
    chosen = list(feeds)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if interactive and not chosen:
        chosen = [click.prompt("A feed to read (URL or path)", default=DEFAULT_FEED)]
    if interactive and from_address is None:
        from_address = click.prompt("Send the emails from", default=DEFAULT_FROM)
    text = starter_config(path, chosen or [DEFAULT_FEED], from_address or DEFAULT_FROM)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        load_config(tmp)  # what init writes is always valid
    except ConfigError:
        tmp.unlink()
        raise
    tmp.replace(path)
    click.echo(f"wrote {path}")
    click.echo(f"next: newsletter fetch --config {path}", err=True)


COMMANDS = (init,)
"""The commands this module adds to ``newsletter`` (see ``newsletter.cli.LAZY_COMMANDS``)."""
