"""The command line: thin click commands that parse options, call one pipeline function
and turn the project's errors into a clear message and an exit code.

Exit codes: 0 done (even when some sources failed: each is a warning), 1 nothing could be
done (no source readable, a recipient failed for good), 2 usage or configuration error.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import MutableMapping
from typing import Any

import click

from newsletter import __version__

LAZY_COMMANDS: dict[str, str] = {
    "init": "newsletter.cli.init",
    "digest": "newsletter.cli.digest",
    "fetch": "newsletter.cli.fetch",
    "check": "newsletter.cli.check",
    "sources": "newsletter.cli.sources",
    "subscribers": "newsletter.cli.subscribers",
    "send": "newsletter.cli.send",
    "preview": "newsletter.cli.send",
    "run": "newsletter.cli.run",
    "serve": "newsletter.cli.run",
    "rss": "newsletter.cli.run",
    "db": "newsletter.cli.db",
    "bounces": "newsletter.cli.bounces",
    "stats": "newsletter.cli.stats",
}


"""Commands that live in their own modules (each listed in that module's ``COMMANDS``),
by name: imported when that command runs or the full list is asked for."""


class LazyGroup(click.Group):
    """A group that imports the modules of ``LAZY_COMMANDS`` only when one of their
    commands is needed.

    The mail and scheduler commands pull in email validation, SMTP, the outbox and the
    scheduler: a tenth of a second or more that ``newsletter fetch`` never needs.
    ``commands`` (all of them, for tests and documentation) imports every module.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lazy: dict[str, str] = {}
        self._own: MutableMapping[str, click.Command] = {}
        super().__init__(*args, **kwargs)

    @property
    def commands(self) -> MutableMapping[str, click.Command]:
        for module in sorted(set(self._lazy.values())):
            self._load(module)
        return self._own

    @commands.setter
    def commands(self, value: MutableMapping[str, click.Command]) -> None:
        self._own = value

    def add_lazy(self, names: dict[str, str]) -> None:
        """Register command names whose module is imported when first needed."""
        self._lazy.update(names)

    def _load(self, module: str) -> None:
        for name in [n for n, m in self._lazy.items() if m == module]:
            del self._lazy[name]
        for command in importlib.import_module(module).COMMANDS:
            self._own[command.name or ""] = command

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self._lazy.get(cmd_name)
        if module is not None:
            self._load(module)
        return self._own.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self._own, *self._lazy})


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newsletter")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail to stderr.")
def main(verbose: bool) -> None:
    """Digest newsletters from the feeds you follow.

    Point it at RSS, Atom, JSON Feed sources and paper lists; it fetches new entries,
    merges duplicates, groups and ranks them, and writes a digest as Markdown, HTML, text,
    RSS or Atom, or sends it by email on a schedule.

    \b
    Quick start:
      newsletter digest https://example.org/feed.xml
      newsletter digest --config config/demo.toml
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


main.add_lazy(LAZY_COMMANDS)
