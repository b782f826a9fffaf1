"""Email commands: ``subscribers`` (add, remove, list, import, export), ``send`` and
``preview``. Thin: each parses options, calls one function of ``subscribers`` or
``deliver`` and reports. Registered on the main group in ``newsletter.cli``.

Exit codes: 0 everything delivered or recorded for a later retry; 1 some recipients
failed for good (listed), or the server refused the login; 2 usage or configuration
errors.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from newsletter.cli.common import (
    config_option,
    fail,
    handle_errors,
    load_settings,
    open_store,
    plural,
    warn,
)
from newsletter.clock import now_utc
from newsletter.errors import AddressError, ConfigError
from newsletter.models import MailFormat, Subscriber
from newsletter.services.subscriptions import (
    add_subscriber,
    import_subscribers,
    list_subscribers,
    remove_subscriber,
    to_csv,
    topic_names,
    unknown_topics,
)


@click.group()
def subscribers() -> None:
    """Manage who receives the digests: add, remove, list, import, export."""


@subscribers.command("add")
@click.argument("address")
@click.option(
    "--digest",
    "digests",
    multiple=True,
    help="Subscribe to this digest (repeatable; default: every digest).",
)
@click.option("--name", default=None, help="The subscriber's name (used in the greeting).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "markdown"]),
    default=None,
    help="HTML email (default), or Markdown: the Markdown text with its HTML rendering.",
)
@click.option(
    "--interest",
    "interests",
    multiple=True,
    help="A topic or keyword that ranks higher for this subscriber (repeatable).",
)
@click.option(
    "--topic",
    "topics",
    multiple=True,
    metavar="NAME",
    help="Only send items of this configured topic (repeatable; default: everything).",
)
@click.option(
    "--timezone",
    default=None,
    metavar="ZONE",
    help="The subscriber's IANA time zone, e.g. Europe/Paris (default: UTC).",
)
@config_option
@handle_errors
def subscribers_add(
    address: str,
    digests: tuple[str, ...],
    name: str | None,
    fmt: MailFormat | None,
    interests: tuple[str, ...],
    topics: tuple[str, ...],
    timezone: str | None,
    config_path: Path | None,
) -> None:
    """Add ADDRESS (or re-activate it) as a subscriber."""
    settings = load_settings(config_path)
    if timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"{timezone!r} is not an IANA time zone name",
                setting="--timezone",
                example="--timezone Europe/Paris",
            ) from None
    for d in digests:
        settings.digest(d)  # unknown names are a usage error
    # Without configured digests there is nothing to check against.
    bad = unknown_topics(topics, settings.digests, digests) if settings.digests else []
    if bad:
        mine = [d for d in settings.digests if not digests or d.name in digests]
        valid = ", ".join(topic_names(mine)) or "none configured"
        raise ConfigError(
            f"{bad[0]!r} is not a configured topic of {', '.join(digests) or 'the digests'}"
            f" (known: {valid})",
            path=settings.path,
            setting="--topic",
        )
    with open_store(settings) as store:
        try:
            sub, created = add_subscriber(
                store,
                address,
                now=now_utc(),
                name=name,
                digests=digests,
                fmt=fmt,
                interests=interests or None,
                topics=topics or None,
                timezone=timezone,
            )
        except AddressError as exc:
            raise ConfigError(
                exc.reason,
                setting=repr(address),
                example="newsletter subscribers add ada@example.org",
            ) from None
    what = ", ".join(sub.digests) or "every digest"
    click.echo(f"{'added' if created else 'updated'} {sub.email} ({what})")


@subscribers.command("remove")
@click.argument("address")
@click.option("--digest", default=None, help="Only from this digest (default: from all).")
@config_option
@handle_errors
def subscribers_remove(address: str, digest: str | None, config_path: Path | None) -> None:
    """Unsubscribe ADDRESS (kept as unsubscribed so nothing is sent to it again)."""
    settings = load_settings(config_path)
    if digest is not None:
        settings.digest(digest)
    with open_store(settings) as store:
        try:
            sub = remove_subscriber(
                store,
                address,
                now=now_utc(),
                digest=digest,
                known_digests=[d.name for d in settings.digests],
            )
        except AddressError as exc:
            raise ConfigError(exc.reason, setting=repr(address)) from None
    if sub is None:
        fail(f"{address} is not a subscriber")
    if sub.status == "unsubscribed":
        click.echo(f"unsubscribed {sub.email}")
    else:
        click.echo(f"removed {sub.email} from {digest} (still on {', '.join(sub.digests)})")


@subscribers.command("list")
@click.option("--digest", default=None, help="Only subscribers of this digest.")
@click.option(
    "--status",
    type=click.Choice(["pending", "active", "unsubscribed", "bounced"]),
    default=None,
    help="Only subscribers in this state.",
)
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@config_option
@handle_errors
def subscribers_list(
    digest: str | None, status: str | None, as_json: bool, config_path: Path | None
) -> None:
    """List subscribers as a table: email, name, digests, topics, interests, format,
    zone, hour of arrival of local-hour digests (empty: the digest's), status with any
    pause (``*`` means every digest, or every topic)."""
    settings = load_settings(config_path)
    if digest is not None:
        settings.digest(digest)
    with open_store(settings) as store:
        subs = list_subscribers(store, digest=digest, status=status)
    if as_json:
        import json

        rows = [
            {
                "email": s.email,
                "name": s.name,
                "digests": list(s.digests),
                "topics": list(s.topics),
                "interests": list(s.interests),
                "format": s.format,
                "timezone": s.timezone,
                "status": s.status,
                "local_hour": s.local_hour,
                "paused_until": s.paused_until.isoformat() if s.paused_until else None,
            }
            for s in subs
        ]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    now = now_utc()
    header = ("email", "name", "digests", "topics", "interests", "format", "zone", "hour", "status")
    table = [header] + [
        (
            s.email,
            s.name,
            ", ".join(s.digests) or "*",
            "; ".join(s.topics) or "*",
            "; ".join(s.interests),
            s.format,
            s.timezone,
            "" if s.local_hour is None else f"{s.local_hour:02d}:00",
            _status(s, now),
        )
        for s in subs
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    click.echo(plural(len(subs), "subscriber"), err=True)


def _status(sub: Subscriber, now: datetime) -> str:
    """The status column: ``active`` or ``paused until 2026-12-24`` while a pause holds."""
    if sub.status == "active" and sub.paused_until is not None and sub.paused_at(now):
        return f"paused until {sub.paused_until:%Y-%m-%d %H:%M}Z"
    return sub.status


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--digest",
    "digests",
    multiple=True,
    help="Subscribe rows that name no digest to this one (repeatable).",
)
@config_option
@handle_errors
def subscribers_import(csv_file: Path, digests: tuple[str, ...], config_path: Path | None) -> None:
    """Import subscribers from CSV_FILE.

    A header row names the columns (email, name, digests, interests, topics, timezone,
    format; lists separated by ";"); without one the first column is the address and
    the second the name. Each bad address or unknown topic is reported with its line;
    the rest are imported.
    """
    settings = load_settings(config_path)
    for d in digests:
        settings.digest(d)
    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError("is not UTF-8 text", path=str(csv_file)) from None
    with open_store(settings) as store:
        report = import_subscribers(
            store, text, now=now_utc(), digests=digests, configs=settings.digests or None
        )
    for p in report.skipped:
        warn(f"{csv_file}, {p}")
    click.echo(
        f"imported {report.added} new, updated {report.updated}, skipped {len(report.skipped)}"
    )


@subscribers.command("export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
@click.option("--digest", default=None, help="Only subscribers of this digest.")
@config_option
@handle_errors
def subscribers_export(output: Path | None, digest: str | None, config_path: Path | None) -> None:
    """Export subscribers as CSV (``import`` reads it back)."""
    settings = load_settings(config_path)
    with open_store(settings) as store:
        text = to_csv(list_subscribers(store, digest=digest))
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {plural(text.count(chr(10)) - 1, 'subscriber')} to {output}", err=True)


COMMANDS = (subscribers,)
"""The commands this module adds to ``newsletter`` (see ``newsletter.cli.LAZY_COMMANDS``)."""
