"""What every command shares: error handling and exit codes, ``--config``, loading the
settings and opening the store. The command modules (``newsletter.cli.*``) import from
here, never from each other.

Exit codes: 0 done, 1 nothing could be done (no source readable, a recipient failed for
good), 2 usage or configuration error, 130 interrupted. A project error's code is its
class's ``exit_code`` (see ``newsletter.errors``); ``handle_errors`` is the one place that
turns errors into codes.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click

from newsletter.errors import EXIT_FAILED as EXIT_FAILED
from newsletter.errors import EXIT_OK as EXIT_OK
from newsletter.errors import EXIT_USAGE as EXIT_USAGE
from newsletter.errors import NewsletterError

if TYPE_CHECKING:
    from newsletter.config import DigestConfig, Settings
    from newsletter.store.database import Store

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INTERRUPTED = 130


def warn(message: str) -> None:
    """A warning on stderr (never on stdout: stdout may be the digest itself)."""
    click.echo(f"warning: {message}", err=True)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    """Turn project errors into one line on stderr and an exit code; never a traceback
    for bad input."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NewsletterError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return cast(F, wrapper)


def config_option(fn: F) -> F:
    """``--config FILE`` (default: ``$NEWSLETTER_CONFIG``, then the user config dir)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Config file (TOML). Default: $NEWSLETTER_CONFIG, then the user config folder.",
    )(fn)


def note_option(fn: F) -> F:
    """``--note FILE.md``: the editor's note of this edition (``send``, ``preview``,
    ``digest``); the command passes it on through the digest's ``note`` setting."""
    return click.option(
        "--note",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        envvar="NEWSLETTER_NOTE",
        metavar="FILE.md",
        help="An editor's note in Markdown, shown atop this edition "
        "(instead of the digest's `note` file; env NEWSLETTER_NOTE).",
    )(fn)


def with_note_file(cfg: DigestConfig, note: Path | None) -> DigestConfig:
    """The digest's settings with ``--note`` as its note file (unchanged without it)."""
    return cfg if note is None else cfg.model_copy(update={"note": str(note)})


def load_settings(config_path: Path | None, *, required: bool = True) -> Settings:
    """The settings for a command (file + environment overrides). A command that needs a
    config and finds none stops here, before anything is created (exit 2, the same
    message for every command: where it looked, ``newsletter init``)."""
    from newsletter.config import load_config

    return load_config(config_path, required=required)


def open_store(settings: Settings, url: str | None = None) -> Store:
    """The store named by the settings (or ``url``)."""
    from newsletter.store.database import Store

    return Store(url or settings.resolved_database_url())


def is_tty() -> bool:
    """Whether stderr is a terminal (progress bars then, plain lines otherwise)."""
    return sys.stderr.isatty()


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 source``, ``2 sources``, ``0 entries`` (``many`` for irregular plurals)."""
    if n == 1:
        return f"{n} {word}"
    if many is None:
        many = (
            word[:-1] + "ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else word + "s"
        )
    return f"{n} {many}"


def kb(n: int) -> str:
    return f"{n / 1000:.1f} KB"


def progress_printer(total: int, *, quiet: bool = False) -> Callable[[Any], None]:
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
