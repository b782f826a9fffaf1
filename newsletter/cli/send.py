"""``newsletter send`` and ``newsletter preview``: one edition by email, or its HTML.

Exit codes: 0 everything delivered or recorded for a later retry; 1 some recipients
failed for good (listed), or the server refused the login; 2 usage or configuration
errors.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from newsletter.cli.common import (
    EXIT_FAILED,
    config_option,
    handle_errors,
    kb,
    load_settings,
    note_option,
    open_store,
    plural,
    with_note_file,
)
from newsletter.clock import now_utc
from newsletter.deliver.mailers import FileMailer, Mailer, make_mailer
from newsletter.errors import AddressError, ConfigError
from newsletter.services.delivery import SendResult, send_current, send_test_copy
from newsletter.services.delivery import preview as preview_edition
from newsletter.services.outputs import write_text
from newsletter.services.tokens import secret_key
from newsletter.store import outbox


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
@note_option
@handle_errors
def send(
    config_path: Path | None,
    digest_name: str | None,
    dry_run: bool,
    to: str | None,
    note: Path | None,
) -> None:
    """Build the current edition if needed and email it to every active subscriber who
    has not received it yet.

    Uses the entries already stored (run `newsletter fetch` first). Delivery is
    `mail.delivery`: `file` writes .eml files into `mail.mail_dir`, `smtp` sends through
    `[smtp]` (password from NEWSLETTER_SMTP_PASSWORD; links signed with
    NEWSLETTER_SECRET_KEY, else a key generated once in the data folder, the one `serve`
    uses). Running it again for the same period sends nothing new.
    Exit 0 when all was delivered or queued for retry, 1 when some recipients failed
    for good (listed), 2 for usage or configuration errors.
    """
    settings = load_settings(config_path)
    cfg = with_note_file(settings.digest(digest_name), note)
    now = now_utc()
    secret = secret_key()
    if to is not None:
        with open_store(settings) as store:
            mailer = None if dry_run else make_mailer(settings)
            try:
                copy = asyncio.run(
                    send_test_copy(store, settings, cfg, mailer, to, now=now, secret=secret)
                )
            except AddressError as exc:
                raise ConfigError(
                    exc.reason, setting="--to", example="--to me@example.org"
                ) from None
        address = copy.message.recipient
        if dry_run:
            click.echo(f"would send a test copy to {address} ({kb(len(copy.message.data))})")
        else:
            click.echo(f"sent a test copy of {cfg.name} {copy.period} to {address}: {copy.reply}")
        return

    def progress(row: outbox.OutboxRow, state: str, detail: str) -> None:
        if state != "sent":
            click.echo(f"{row.email}: {state}: {detail}", err=True)

    mailer = make_mailer(settings) if not dry_run else FileMailer(settings.mail.mail_dir)
    with open_store(settings) as store:
        results = asyncio.run(
            send_current(
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
    failed = False
    for result in results:
        failed = _report(cfg.name, result, mailer, dry_run=dry_run) or failed
    if failed:
        sys.exit(EXIT_FAILED)


def _report(name: str, result: SendResult, mailer: Mailer, *, dry_run: bool) -> bool:
    """One edition's outcome; whether some recipients failed for good."""
    label = f"{name} {result.period}"
    if result.held:
        click.echo(f"{label}: {result.held}; nothing sent")
        return False
    if result.no_subscribers:
        click.echo(
            f"{label}: no active subscribers; nothing sent and no edition recorded "
            f"(add one with `newsletter subscribers add`)"
        )
        return False
    if result.edition is None and not result.items and not result.message_bytes:
        click.echo(f"{label}: nothing new since the last edition; nothing to send")
        return False
    if dry_run:
        state = "stored" if result.edition is not None else "would be created"
        click.echo(
            f"{label} (edition {state}): {plural(result.items, 'item')}; would send to "
            f"{plural(result.recipients, 'subscriber')}, {kb(result.message_bytes)} per message"
        )
        return False
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
        click.echo(f"messages written to {mailer.folder / name / result.period}", err=True)
    if report.failed:
        click.echo("failed for good:", err=True)
        for address, reason in report.failed:
            click.echo(f"  {address}: {reason}", err=True)
    return bool(report.failed)


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
@click.option(
    "--screenshots",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write PNG screenshots of the email to this folder (375 and 600 px, light "
    "and dark, and without <style>) and print each one's height; needs chromium "
    "(skipped with a message without it).",
)
@note_option
@handle_errors
def preview(
    config_path: Path | None,
    digest_name: str | None,
    output: Path | None,
    open_browser: bool,
    screenshots: Path | None,
    note: Path | None,
) -> None:
    """Write the HTML email of the current edition to a file and print its size
    (Gmail clips HTML over 102 KB; the email is kept under 90 KB)."""
    from newsletter.render.email import MAX_HTML_BYTES

    settings = load_settings(config_path)
    cfg = with_note_file(settings.digest(digest_name), note)
    with open_store(settings) as store:
        sample = preview_edition(store, settings, cfg, now=now_utc(), secret=secret_key())
    path = output or Path(settings.mail.mail_dir).expanduser() / f"{cfg.name}-preview.html"
    html = sample.html
    write_text(path, html)
    rendered = sample.rendered
    click.echo(
        f"wrote {path}: HTML {kb(len(html.encode('utf-8')))} (limit {kb(MAX_HTML_BYTES)}), "
        f"message {kb(len(sample.message.data))}, {plural(rendered.items, 'item')}"
        + (f" ({rendered.omitted} left out)" if rendered.omitted else "")
    )
    if screenshots is not None:
        _screenshots(html, screenshots, cfg.name)
    if open_browser:
        import webbrowser  # only `preview --open` starts a browser

        webbrowser.open(path.resolve().as_uri())


def _screenshots(html: str, folder: Path, stem: str) -> None:
    """Screenshots of the email, or why there are none (a demo goes on without them)."""
    from newsletter.services import screenshots as shots

    reason = shots.unavailable()
    if reason:
        click.echo(f"screenshots skipped: {reason}", err=True)
        return
    for shot in shots.screenshots(html, folder, stem=stem):
        click.echo(f"wrote {shot.path}: {shot.describe()}")


COMMANDS = (
    send,
    preview,
)
"""The commands this module adds to ``newsletter`` (see ``newsletter.cli.LAZY_COMMANDS``)."""
