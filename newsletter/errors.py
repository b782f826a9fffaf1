"""One exception tree for the whole project.

Every error a user can cause carries the context needed to fix it (which file and line,
which source, which subscriber). Each class says how the command line ends when it
reaches the user: its ``exit_code`` (``EXIT_FAILED`` unless the tree shows otherwise),
read in one place, ``newsletter.cli.common.handle_errors``::

    NewsletterError                     exit 1
    ├── ConfigError                     exit 2  bad settings: file, line, setting, example
    ├── AddressError (ValueError)       exit 2  not a valid email address
    ├── TemplateError                   exit 2  a template is missing or broken
    ├── SourceError                             a source could not be read (name/URL)
    │   └── ParseError                          bytes that are not a feed we can read
    ├── StoreError                              the database could not be opened or written
    │   └── SchemaError                         its schema is not the one this code reads
    │       ├── SchemaOutdatedError             older: run `newsletter db upgrade`
    │       └── SchemaTooNewError               written by a later version of newsletter
    ├── DeliveryError                           one message could not be delivered
    │   ├── PermanentDeliveryError              5xx: this recipient will never accept it
    │   └── TransientDeliveryError              4xx, timeouts, dropped connections: retry
    ├── AuthenticationError                     the mail server refused us: stop the run
    │   └── MailSetupError                      unreachable as configured (TLS, port, host)
    ├── MailboxError                            the bounce mailbox could not be read (IMAP)
    ├── BounceEventError (ValueError)           a bounce webhook body not in a documented shape
    ├── BadTokenError (ValueError)              a link token forged, damaged or of another kind
    │   └── ExpiredTokenError                   a genuine token older than its lifetime
    ├── CompletionError                         the LLM endpoint gave no usable summary
    └── EmptyVocabularyError (ValueError)       no term left to vectorize (grouping falls back)

A source that cannot be downloaded is not an exception: the fetch result carries the
reason as text (``FetchResult.error``), and one bad source never stops a run.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
"""Something could not be done (no source readable, a recipient failed for good...)."""
EXIT_USAGE = 2
"""Usage or configuration error: fix the command or the settings."""


class NewsletterError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code: int = EXIT_FAILED
    """How the command line ends when this error reaches it."""


class ConfigError(NewsletterError):
    """A setting is missing or invalid.

    ``str(err)`` reads like ``config/demo.toml, line 12: digests[0].schedule: must be a cron
    expression like "0 7 * * *"``.
    """

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        setting: str | None = None,
        example: str | None = None,
        problems: tuple[ConfigError, ...] = (),
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.setting = setting
        self.example = example
        self.problems = problems
        """Every error found, when there are several (each reads on a line of its own)."""
        super().__init__(str(self))

    @classmethod
    def of(cls, problems: list[ConfigError], *, path: str | None = None) -> ConfigError:
        """One error for ``problems``: the only one, or all of them, one per line."""
        if len(problems) == 1:
            return problems[0]
        return cls(f"{len(problems)} errors", path=path, problems=tuple(problems))

    def __str__(self) -> str:
        if self.problems:
            head = f"{self.path}: " if self.path else ""
            lines = [f"{head}{len(self.problems)} errors:"]
            lines += [f"  {p}" for p in self.problems]
            return "\n".join(lines)
        where = ""
        if self.path:
            where = self.path + (f", line {self.line}" if self.line else "") + ": "
        what = f"{self.setting}: " if self.setting else ""
        hint = f" (for example: {self.example})" if self.example else ""
        return f"{where}{what}{self.message}{hint}"


class AddressError(NewsletterError, ValueError):
    """An address that is not a valid email address (``reason`` says why)."""

    exit_code = EXIT_USAGE

    def __init__(self, address: str, reason: str, *, line: int | None = None) -> None:
        self.address = address
        self.reason = reason
        self.line = line
        where = f"line {line}: " if line else ""
        super().__init__(f"{where}{address!r} is not a valid email address: {reason}")


class TemplateError(NewsletterError):
    """A template is missing or fails to render; the message names the template."""

    exit_code = EXIT_USAGE


class SourceError(NewsletterError):
    """A source could not be read; ``source`` names it (its name or URL)."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class ParseError(SourceError):
    """The bytes of a source are not a feed or list we can read."""


class StoreError(NewsletterError):
    """The database could not be opened, migrated or written."""


class SchemaError(StoreError):
    """The database's schema is not the one this code reads and writes. Names the
    database, its revision (``current``, None when it has none) and the code's
    (``expected``)."""

    def __init__(self, message: str, *, database: str, current: str | None, expected: str):
        self.database = database
        self.current = current
        self.expected = expected
        super().__init__(message)


class SchemaOutdatedError(SchemaError):
    """The database is at an older revision than the code: ``newsletter db upgrade``."""


class SchemaTooNewError(SchemaError):
    """The database was upgraded by a later version of newsletter."""


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
    """The mail server refused our credentials (or the session the settings ask for):
    nothing can be sent this run."""


class MailSetupError(AuthenticationError):
    """The mail server cannot be reached or spoken to as the settings say (a TLS
    handshake with a plain server, a refused port, a host name that does not resolve):
    retrying cannot fix it, so the run stops and says which setting to check."""


class MailboxError(NewsletterError):
    """The bounce mailbox (IMAP) could not be reached, logged into or read."""


class BounceEventError(NewsletterError, ValueError):
    """A bounce webhook's body is not in a shape we document (the endpoint answers 400)."""


class BadTokenError(NewsletterError, ValueError):
    """A link token that was forged, damaged or made for another kind of link."""


class ExpiredTokenError(BadTokenError):
    """A token with a valid signature that is older than its lifetime."""


class CompletionError(NewsletterError):
    """An LLM request or answer that gives no summary; the message says why (for the
    report: the extractive summary is kept)."""


class EmptyVocabularyError(NewsletterError, ValueError):
    """No term of any document is left to make a column of (the vectorizer's input was
    empty or only stop words); callers fall back to fewer constraints or no grouping."""
