"""``newsletter bounces``: read the bounce mailbox once, or hand messages in from a file
or a pipe (an MTA's alias: ``bounces: "|newsletter bounces read -"``).

The daemon reads the mailbox on its own every ``bounces.poll_interval`` when
``bounces.imap_host`` is set; the web app takes them over HTTP (``POST /bounces/...``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from newsletter.cli.common import (
    EXIT_FAILED,
    config_option,
    fail,
    handle_errors,
    load_settings,
    open_store,
)


@click.group()
def bounces() -> None:
    """Read bounces, complaints and unsubscribe mails (see docs/operating.md)."""


@bounces.command("poll")
@config_option
@handle_errors
def bounces_poll(config_path: Path | None) -> None:
    """Read the new messages of the bounce mailbox (bounces.imap_*) once, act on each
    and mark it done. Exit 1 when the mailbox cannot be read."""
    from newsletter.clock import now_utc
    from newsletter.services.bounces import poll_mailbox
    from newsletter.services.tokens import secret_key

    settings = load_settings(config_path)
    if not settings.bounces.imap_host:
        fail("no bounce mailbox is configured: set bounces.imap_host (docs/operating.md)", 2)
    with open_store(settings) as store:
        tally = poll_mailbox(store, settings, secret=secret_key(), now=now_utc())
    for o in tally.outcomes:
        click.echo(f"{o.result:<10} {o.source_id}  {o.detail}".rstrip())
    click.echo(tally.summary())


@bounces.command("read")
@config_option
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@handle_errors
def bounces_read(config_path: Path | None, files: tuple[str, ...]) -> None:
    """Read raw messages (DSN, ARF, unsubscribe mails) from FILES, one message per file;
    '-' reads one from standard input. Exit 1 when a file cannot be read."""
    from newsletter.clock import now_utc
    from newsletter.services.bounces import Tally, process_message
    from newsletter.services.tokens import secret_key

    settings = load_settings(config_path)
    secret, digests = secret_key(), [d.name for d in settings.digests]
    tally, unreadable = Tally(), 0
    with open_store(settings) as store:
        for name in files:
            try:
                data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
            except OSError as exc:
                click.echo(f"error: {name}: {exc.strerror}", err=True)
                unreadable += 1
                continue
            outcome = process_message(
                store, data, cfg=settings.bounces, secret=secret, digests=digests, now=now_utc()
            )
            tally.outcomes.append(outcome)
            click.echo(f"{outcome.result:<10} {name}  {outcome.detail}".rstrip())
    click.echo(tally.summary())
    if unreadable:
        sys.exit(EXIT_FAILED)


@bounces.command("list")
@config_option
@click.option("--email", default=None, help="Only the events of this address.")
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=50,
    show_default=True,
    help="How many of the latest events to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per event).")
@handle_errors
def bounces_list(config_path: Path | None, email: str | None, limit: int, as_json: bool) -> None:
    """The latest bounces, complaints and unsubscribes recorded: when, what, which
    address and edition, and why."""
    import json
    from datetime import datetime

    from newsletter.services.bounces import recent_events
    from newsletter.services.subscriptions import normalize_address

    settings = load_settings(config_path)
    with open_store(settings) as store:
        rows = recent_events(store, email=normalize_address(email) if email else None, limit=limit)
    keys = ("received_at", "kind", "email", "edition_id", "reason")
    if as_json:
        data = [{k: r[k] for k in keys} | {"received_at": str(r["received_at"])} for r in rows]
        click.echo(json.dumps({"events": data}, indent=2))
        return
    if not rows:
        click.echo("no bounces, complaints or unsubscribes recorded")
        return
    for r in rows:
        received = r["received_at"]
        when = received.strftime("%Y-%m-%d %H:%M") if isinstance(received, datetime) else "?"
        edition = r["edition_id"] if r["edition_id"] is not None else "-"
        click.echo(f"{when}  {r['kind']:<11} {r['email']}  edition {edition}  {r['reason']}")


COMMANDS = (bounces,)
"""The commands this module adds to ``newsletter`` (see ``newsletter.cli.LAZY_COMMANDS``)."""
