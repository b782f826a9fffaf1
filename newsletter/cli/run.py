"""Commands that keep running or serve the web side: ``run``, ``serve``, ``rss``.

Registered on the main group by ``newsletter.cli`` (``main.add_command``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from newsletter.cli.common import config_option, handle_errors, load_settings, open_store, plural
from newsletter.config import Settings, parse_duration
from newsletter.errors import ConfigError


def _duration(value: str, option: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(str(exc), setting=option, example=f"{option} 30m") from None


def _log_to_stderr() -> None:
    """Structured daemon lines on stderr (journald adds time and unit)."""
    root = logging.getLogger("newsletter")
    if not any(getattr(h, "_newsletter_run", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        handler._newsletter_run = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    root.propagate = False


def _web_app(settings: Settings, store: Any, mailer: Any, secret: str) -> Any:
    from newsletter.serve.web import create_app

    return create_app(settings, store, mailer=mailer, secret=secret)


def _until_stopped(
    settings: Settings, daemon: Any, app: Any, *, host: str | None, port: int | None
) -> None:
    """Run the daemon and/or the web app until SIGTERM or Ctrl-C (``run`` and ``serve``);
    ``port`` 0 takes any free port."""
    from newsletter.serve.runner import serve_until_stopped

    asyncio.run(
        serve_until_stopped(
            daemon,
            web_app=app,
            host=host or settings.web.host,
            port=settings.web.port if port is None else port,
        )
    )


def _secret(settings: Settings) -> str:
    """The signing key ``send`` uses too (never a built-in one: see ``secret_key``)."""
    from newsletter.services.tokens import secret_key

    return secret_key()


def _roles(values: tuple[str, ...], web: bool | None) -> frozenset[str]:
    """The roles ``--role`` (default: schedule and send) and ``--web``/``--no-web`` ask for."""
    from newsletter.serve.leader import DAEMON_ROLES, parse_roles

    try:
        roles = parse_roles(values) if values else DAEMON_ROLES
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--role'") from None
    if web is True:
        roles |= {"web"}
    elif web is False:
        roles -= {"web"}
    if not roles:
        raise click.BadParameter("nothing left to run", param_hint="'--role' / '--no-web'")
    return roles


@click.command()
@config_option
@click.option(
    "--poll-interval",
    default=None,
    help="How often sources are fetched, e.g. 30m (default: fetch.poll_interval, 30m).",
)
@click.option("--no-poll", is_flag=True, help="Do not fetch sources (another process does).")
@click.option(
    "--role",
    "role_values",
    multiple=True,
    metavar="ROLE[,ROLE]",
    help="Run only part of it, repeatable or comma-separated: schedule (poll, plan and "
    "send each edition; one daemon per database leads), send (retry the outbox), web "
    "(the web pages). Default: schedule,send.",
)
@click.option(
    "--web/--no-web",
    default=None,
    help="Also serve the web pages (subscribe, archive, feeds): the same as --role web.",
)
@click.option("--host", default=None, help="Web address to listen on (default: web.host).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Web port (default: web.port); 0 takes any free port, logged as event=web_listening.",
)
@click.option(
    "--stop-timeout",
    type=click.FloatRange(0, 600),
    default=20.0,
    show_default=True,
    help="Seconds a send in progress may take to finish after SIGTERM.",
)
@click.option(
    "--leader-retry",
    default=None,
    metavar="DURATION",
    help="With several daemons on one PostgreSQL database: how often one that does not "
    "schedule tries to take over, so how soon a dead leader is replaced, e.g. 10s "
    "(default: 1m).",
)
@handle_errors
def run(
    config_path: Path | None,
    poll_interval: str | None,
    no_poll: bool,
    role_values: tuple[str, ...],
    web: bool | None,
    host: str | None,
    port: int | None,
    stop_timeout: float,
    leader_retry: str | None,
) -> None:
    """Run unattended: poll sources, send each digest on its schedule (in its time zone),
    and optionally serve the web pages.

    Jobs live in the database, so a restart replaces them; an edition missed while the
    daemon was down is sent once if still within the digest's grace period. On
    PostgreSQL several daemons may share one database: one of them schedules (the
    leader), every one sends. SIGTERM or Ctrl-C stops it cleanly (exit 0).
    """
    from newsletter.deliver.mailers import make_mailer
    from newsletter.serve.daemon import Daemon, DaemonOptions
    from newsletter.serve.events import log_event
    from newsletter.serve.leader import LEADER_RETRY, describe_roles

    roles = _roles(role_values, web)
    settings = load_settings(config_path, required=True)
    interval = _duration(poll_interval, "--poll-interval") if poll_interval else None
    retry = _duration(leader_retry, "--leader-retry") if leader_retry else None
    if retry is not None and retry.total_seconds() <= 0:
        raise ConfigError("must be longer than 0s", setting="--leader-retry", example="10s")
    if roles - {"web"} and not settings.digests and not settings.sources:
        raise ConfigError(
            "nothing to run: no sources and no digests configured",
            path=settings.path,
            setting="digests",
            example='[[digests]] name = "daily" schedule = "0 7 * * *"',
        )
    _log_to_stderr()
    secret = _secret(settings)
    with open_store(settings) as store:
        mailer = make_mailer(settings)
        options = DaemonOptions(
            poll_interval=interval or parse_duration(settings.fetch.poll_interval),
            poll=not no_poll,
            web="web" in roles,
            stop_timeout=stop_timeout,
            roles=roles - {"web"},
            leader_retry=retry or LEADER_RETRY,
        )
        daemon = Daemon(settings, store, mailer, secret, options=options) if options.roles else None
        if daemon is None:  # the web pages only
            log_event("started", roles=describe_roles(roles))
        app = _web_app(settings, store, mailer, secret) if "web" in roles else None
        _until_stopped(settings, daemon, app, host=host, port=port)


@click.command()
@config_option
@click.option("--host", default=None, help="Address to listen on (default: web.host).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port (default: web.port); 0 takes any free port, logged as event=web_listening.",
)
@handle_errors
def serve(config_path: Path | None, host: str | None, port: int | None) -> None:
    """Serve the web pages: subscribe with double opt-in, confirm, one-click unsubscribe,
    the archive of past editions and its RSS/Atom feeds, /healthz.

    Put it behind a reverse proxy for TLS; set web.base_url to the public URL.
    """
    from newsletter.deliver.mailers import make_mailer

    settings = load_settings(config_path)
    _log_to_stderr()
    secret = _secret(settings)
    with open_store(settings) as store:
        app = _web_app(settings, store, make_mailer(settings), secret)
        _until_stopped(settings, None, app, host=host, port=port)


@click.command()
@config_option
@click.option("--digest", "digest_name", help="Which configured digest (default: the first).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rss", "atom"]),
    default=None,
    help="RSS 2.0 (default) or Atom, as `digest --format`.",
)
@click.option("--atom", "atom", is_flag=True, help="The same as --format atom.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
@handle_errors
def rss(
    config_path: Path | None,
    digest_name: str | None,
    fmt: str | None,
    atom: bool,
    output: Path | None,
) -> None:
    """Write the feed of a digest's past editions (the same as /DIGEST/feed.xml), one
    item per edition with its full HTML, without running a server."""
    from newsletter.render.templates import make_environment
    from newsletter.serve.archive import FEED_EDITIONS, EditionArchive

    settings = load_settings(config_path)
    cfg = settings.digest(digest_name)
    with open_store(settings) as store:
        archive = EditionArchive(settings, store, make_environment(settings.template_dir))
        data = archive.feed(cfg.name, "atom" if atom or fmt == "atom" else "rss")
        count = len(store.editions(cfg.name, limit=1000))
    assert data is not None
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(output)
    click.echo(
        f"wrote {plural(min(count, FEED_EDITIONS), 'edition')} of {cfg.name} to {output}", err=True
    )


COMMANDS = (
    run,
    serve,
    rss,
)
"""The commands this module adds to ``newsletter`` (see ``newsletter.cli.LAZY_COMMANDS``)."""
