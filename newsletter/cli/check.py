"""``newsletter check``: validate the configuration."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsletter.cli.common import (
    config_option,
    handle_errors,
    load_settings,
    plural,
)
from newsletter.errors import TemplateError

if TYPE_CHECKING:
    pass


@click.command()
@config_option
@handle_errors
def check(config_path: Path | None) -> None:
    """Validate the configuration: errors name the file, line and setting, with a valid
    example. Also checks that the templates load."""
    from newsletter.render.templates import make_environment

    settings = load_settings(config_path, required=True)
    env = make_environment(settings.template_dir)
    names = (
        *("digest.md.j2", "digest.html.j2", "digest.txt.j2", "digest_body.txt.j2"),
        *("email.txt.j2", "email.md.j2", "email.markdown.html.j2"),
    )
    for name in names:
        try:
            env.get_template(name)
        except Exception as exc:
            raise TemplateError(f"template {name}: {exc}") from None
    from newsletter.services.notes import read_note

    for digest in settings.digests:
        if digest.note and "{period}" not in digest.note:
            read_note(digest, "")  # a missing or unreadable note file: exit 2, naming it
    click.echo(
        f"{settings.path}: ok ({plural(len(settings.sources), 'source')}, "
        f"{plural(len(settings.digests), 'digest')})"
    )
    web = settings.web
    if web.base_url.startswith("http://") and not web.allow_http_one_click:
        click.echo(
            f"note: web.base_url is http ({web.base_url}): mail goes out without "
            "List-Unsubscribe-Post, so mail clients offer no one-click unsubscribe "
            "(RFC 8058 requires https); set web.base_url to the https URL, or "
            "web.allow_http_one_click = true for local testing"
        )


COMMANDS = (check,)
"""The commands this module adds to ``newsletter`` (see ``newsletter.cli.LAZY_COMMANDS``)."""
