"""Email commands: ``subscribers`` (add, remove, list, import, export), ``send`` and
``preview``. Thin: each parses options, calls one function of ``subscribers`` or
``deliver`` and reports. Registered on the main group in ``newsletter.cli``.

Exit codes: 0 everything delivered or recorded for a later retry; 1 some recipients
failed for good (listed), or the server refused the login; 2 usage or configuration
errors.
"""

from __future__ import annotations

import asyncio
import sys
import webbrowser
from pathlib import Path

import click

from newsletter import outbox  # registers the subscribers and outbox tables
from newsletter.cli_common import (
    EXIT_FAILED,
    config_option,
    fail,
    handle_errors,
    load_settings,
    open_store,
    warn,
)
from newsletter.deliver import (
    FileMailer,
    composer_for,
    make_mailer,
    plan_edition,
    send_edition,
    send_one,
)
from newsletter.errors import ConfigError
from newsletter.models import MailFormat
from newsletter.render import now_utc
from newsletter.subscribers import (
    AddressError,
    add_subscriber,
    import_subscribers,
    list_subscribers,
    remove_subscriber,
    to_csv,
    topic_names,
    unknown_topics,
)
from newsletter.tokens import secret_key

_ = outbox


def _kb(n: int) -> str:
    return f"{n / 1000:.1f} KB"


# -- subscribers ---------------------------------------------------------------------------


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
    help="HTML email (default) or one Markdown text part.",
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
@config_option
@handle_errors
def subscribers_add(
    address: str,
    digests: tuple[str, ...],
    name: str | None,
    fmt: MailFormat | None,
    interests: tuple[str, ...],
    topics: tuple[str, ...],
    config_path: Path | None,
) -> None:
    """Add ADDRESS (or re-activate it) as a subscriber."""
    settings = load_settings(config_path)
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
@config_option
@handle_errors
def subscribers_list(digest: str | None, status: str | None, config_path: Path | None) -> None:
    """List subscribers: address, name, digests, format, status, topics."""
    settings = load_settings(config_path)
    with open_store(settings) as store:
        subs = list_subscribers(store, digest=digest, status=status)
    for s in subs:
        cells = [s.email, s.name, ",".join(s.digests) or "*", s.format, s.status]
        click.echo("\t".join([*cells, ";".join(s.topics) or "*"]))
    click.echo(f"{len(subs)} subscribers", err=True)


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
        click.echo(f"wrote {text.count(chr(10)) - 1} subscribers to {output}", err=True)


# -- send ----------------------------------------------------------------------------------


@click.command()
@config_option
@click.option(
    "--digest", "digest_name", default=None, help="Which configured digest (default: the first)."
)
@click.option("--dry-run", is_flag=True, help="Report what would be sent; send nothing.")
@click.option(
    "--to",
    "to",
    default=None,
    metavar="ADDRESS",
    help="Send one test copy to ADDRESS without touching the outbox.",
)
@handle_errors
def send(config_path: Path | None, digest_name: str | None, dry_run: bool, to: str | None) -> None:
    """Build the current edition if needed and email it to every active subscriber who
    has not received it yet.

    Uses the entries already stored (run `newsletter fetch` first). Delivery is
    `mail.delivery`: `file` writes .eml files into `mail.mail_dir`, `smtp` sends through
    `[smtp]` (password from NEWSLETTER_SMTP_PASSWORD; links signed with
    NEWSLETTER_SECRET_KEY). Running it again for the same period sends nothing new.
    Exit 0 when all was delivered or queued for retry, 1 when some recipients failed
    for good (listed), 2 for usage or configuration errors.
    """
    from newsletter.subscribers import normalize_address

    settings = load_settings(config_path)
    cfg = settings.digest(digest_name)
    now = now_utc()
    real = settings.mail.delivery == "smtp" and not dry_run
    secret = secret_key(required=real)
    with open_store(settings) as store:
        if to is not None:
            try:
                address = normalize_address(to)
            except AddressError as exc:
                raise ConfigError(
                    exc.reason, setting="--to", example="--to me@example.org"
                ) from None
            plan = plan_edition(store, settings, cfg, now=now, create=False)
            composer = composer_for(store, settings, cfg, plan, secret=secret)
            message = composer.message(
                email=address,
                name="",
                key=f"test-{now.timestamp():.0f}",
                interests=(),
                fmt="html",
                now=now,
            )
            if dry_run:
                click.echo(f"would send a test copy to {address} ({_kb(len(message.data))})")
                return
            mailer = make_mailer(settings)
            reply = asyncio.run(send_one(mailer, message))
            click.echo(f"sent a test copy of {cfg.name} {plan.period} to {address}: {reply}")
            return
        mailer = make_mailer(settings) if not dry_run else FileMailer(settings.mail.mail_dir)

        def progress(row: outbox.OutboxRow, state: str, detail: str) -> None:
            if state != "sent":
                click.echo(f"{row.email}: {state}: {detail}", err=True)

        result = asyncio.run(
            send_edition(
                store,
                settings,
                cfg,
                mailer,
                now=now,
                clock=now_utc,
                secret=secret,
                dry_run=dry_run,
                on_result=progress,
            )
        )
    label = f"{cfg.name} {result.period}"
    if result.edition is None and not result.items and not result.message_bytes:
        click.echo(f"{label}: nothing new since the last edition; nothing to send")
        return
    if dry_run:
        state = "stored" if result.edition is not None else "would be created"
        click.echo(
            f"{label} (edition {state}): {result.items} items; would send to "
            f"{result.recipients} subscribers, {_kb(result.message_bytes)} per message"
        )
        return
    report = result.report
    assert report is not None
    c = result.counts
    click.echo(
        f"{label}: sent {report.sent} now ({c.get('sent', 0)} in all), "
        f"{c.get('retry', 0)} queued for retry, {c.get('failed', 0)} failed, "
        f"{c.get('suppressed', 0)} suppressed"
        + (f", {report.recovered} resumed after an interrupted run" if report.recovered else "")
        + f" in {report.seconds:.1f}s"
    )
    if isinstance(mailer, FileMailer) and report.sent:
        click.echo(f"messages written to {mailer.folder / cfg.name / result.period}", err=True)
    if report.failed:
        click.echo("failed for good:", err=True)
        for address, reason in report.failed:
            click.echo(f"  {address}: {reason}", err=True)
        sys.exit(EXIT_FAILED)


# -- preview -------------------------------------------------------------------------------


@click.command()
@config_option
@click.option(
    "--digest", "digest_name", default=None, help="Which configured digest (default: the first)."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the HTML (default: <mail_dir>/<digest>-preview.html).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open it in the default browser.")
@handle_errors
def preview(
    config_path: Path | None, digest_name: str | None, output: Path | None, open_browser: bool
) -> None:
    """Write the HTML email of the current edition to a file and print its size
    (Gmail clips HTML over 102 KB; the email is kept under 90 KB)."""
    from newsletter.mail import MAX_HTML_BYTES, parse_message

    settings = load_settings(config_path)
    cfg = settings.digest(digest_name)
    now = now_utc()
    with open_store(settings) as store:
        plan = plan_edition(store, settings, cfg, now=now, create=False)
        composer = composer_for(store, settings, cfg, plan, secret=secret_key(required=False))
        message = composer.message(
            email="preview@example.org", name="", key="preview", interests=(), fmt="html", now=now
        )
    rendered = composer.rendered((), "html")
    msg = parse_message(message.data)
    body = msg.get_body(("html",))
    html = body.get_content() if body is not None else ""
    path = output or Path(settings.mail.mail_dir).expanduser() / f"{cfg.name}-preview.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    size = len(html.encode("utf-8"))
    click.echo(
        f"wrote {path}: HTML {_kb(size)} (limit {_kb(MAX_HTML_BYTES)}), message "
        f"{_kb(len(message.data))}, {rendered.items} items"
        + (f" ({rendered.omitted} left out)" if rendered.omitted else "")
    )
    if open_browser:
        webbrowser.open(path.resolve().as_uri())


COMMANDS = (subscribers, send, preview)
"""What ``newsletter.cli`` registers: ``for c in COMMANDS: main.add_command(c)``."""
