"""``newsletter stats``: what became of each edition's messages (queued, sent, failed,
bounced, complained, unsubscribed), as a table or as JSON for monitoring."""

from __future__ import annotations

import json
from pathlib import Path

import click

from newsletter.cli.common import config_option, fail, handle_errors, load_settings, open_store

COLUMNS = ("queued", "sent", "failed", "bounced", "complained", "unsubscribed")


@click.command("stats")
@config_option
@click.option("--digest", "digest", default=None, help="Only this digest's editions.")
@click.option(
    "--edition",
    "edition",
    default=None,
    help="One edition: its id (as shown) or its period (e.g. 2026-12-01).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=10,
    show_default=True,
    help="How many of the latest editions to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per edition).")
@handle_errors
def stats(
    config_path: Path | None, digest: str | None, edition: str | None, limit: int, as_json: bool
) -> None:
    """Per edition: messages queued (not sent yet), sent, failed, and the addresses that
    bounced, complained (a spam report) or unsubscribed after it. Exit 1 when an
    --edition is given and not found."""
    from newsletter.services.bounces import edition_stats

    settings = load_settings(config_path)
    if digest is not None:
        settings.digest(digest)  # an unknown name is a clear error listing the known ones
    with open_store(settings) as store:
        rows = edition_stats(store, digest=digest, edition=edition, limit=limit)
    if edition is not None and not rows:
        fail(f"no edition {edition!r}" + (f" of {digest}" if digest else ""))
    if as_json:
        data = [
            {
                "edition": r.edition_id,
                "digest": r.digest,
                "period": r.period,
                "created_at": r.created_at.isoformat(),
                **{c: getattr(r, c) for c in COLUMNS},
            }
            for r in rows
        ]
        click.echo(json.dumps({"editions": data}, indent=2))
        return
    if not rows:
        click.echo("no editions yet")
        return
    head = f"{'id':>5}  {'digest':<16} {'period':<12}" + "".join(f"{c:>13}" for c in COLUMNS)
    click.echo(head)
    for r in rows:
        cells = "".join(f"{getattr(r, c):>13}" for c in COLUMNS)
        click.echo(f"{r.edition_id:>5}  {r.digest[:16]:<16} {r.period[:12]:<12}{cells}")


COMMANDS = (stats,)
"""The commands this module adds to ``newsletter`` (see ``newsletter.cli.LAZY_COMMANDS``)."""
