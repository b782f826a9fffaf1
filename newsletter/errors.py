"""One exception tree for the whole project.

Every error a user can cause carries the context needed to fix it (which file and line,
which source, which subscriber), and the CLI turns it into a message and an exit code::

    NewsletterError
    ├── ConfigError          bad settings: file, line, setting, what a valid value looks like
    ├── SourceError          a source could not be read: carries the source name/URL
    │   ├── FetchError       network / HTTP failure (status, reason)
    │   └── ParseError       bytes that are not a feed we can read
    ├── StoreError           the database could not be opened or written
    ├── TemplateError        a template is missing or broken (names the template)
    └── DeliveryError        a message could not be delivered
        ├── PermanentDeliveryError   5xx: this recipient will never accept it
        ├── TransientDeliveryError   4xx, timeouts, dropped connections: retry later
        └── AuthenticationError      the server refused our credentials: stop the run
"""

from __future__ import annotations


class NewsletterError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(NewsletterError):
    """A setting is missing or invalid.

    ``str(err)`` reads like ``config/demo.toml, line 12: digests[0].schedule: must be a cron
    expression like "0 7 * * *"``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        setting: str | None = None,
        example: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.setting = setting
        self.example = example
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path + (f", line {self.line}" if self.line else "") + ": "
        what = f"{self.setting}: " if self.setting else ""
        hint = f" (for example: {self.example})" if self.example else ""
        return f"{where}{what}{self.message}{hint}"


class SourceError(NewsletterError):
    """A source could not be read; ``source`` names it (its name or URL)."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class FetchError(SourceError):
    """The source could not be downloaded (network or HTTP error)."""

    def __init__(self, source: str, reason: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(source, reason)


class ParseError(SourceError):
    """The bytes of a source are not a feed or list we can read."""


class StoreError(NewsletterError):
    """The database could not be opened, migrated or written."""


class TemplateError(NewsletterError):
    """A template is missing or fails to render; the message names the template."""


class DeliveryError(NewsletterError):
    """A message could not be delivered to ``recipient``."""

    def __init__(self, recipient: str, reason: str) -> None:
        self.recipient = recipient
        self.reason = reason
        super().__init__(f"{recipient}: {reason}")


class PermanentDeliveryError(DeliveryError):
    """The server refused this recipient for good (5xx)."""


class TransientDeliveryError(DeliveryError):
    """A temporary failure (4xx, timeout, dropped connection): try again later."""


class AuthenticationError(NewsletterError):
    """The mail server refused our credentials: nothing can be sent this run."""
