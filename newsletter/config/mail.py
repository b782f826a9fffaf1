"""How mail goes out and what comes back: ``[mail]``, ``[smtp]`` and ``[bounces]``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from newsletter.config.base import ConfigModel, PollInterval, parse_duration


class MailConfig(ConfigModel):
    """Message headers and the delivery method."""

    delivery: Literal["file", "smtp"] = "file"
    mail_dir: str = "out/mail"
    from_address: str = "Newsletter <newsletter@example.org>"
    reply_to: str | None = None
    domain: str = "example.org"
    """Used in Message-ID and List-Id; never the machine's host name."""
    max_items: int = Field(60, ge=1, le=1000)
    unsubscribe_address: str | None = None
    """The mailto target of List-Unsubscribe (default ``unsubscribe@<domain>``)."""
    logo_url: str | None = None
    """An optional logo at the top of HTML emails (https URL, shown 120x40)."""
    # What one HTML email shows (render/mail_layout.py); the web edition shows everything.
    highlights: int = Field(3, ge=0, le=20)
    """The best stories shown in full at the top (thumbnail, summary, links); the rest
    are compact lines under their sections."""
    screens: float = Field(6.0, ge=1, le=100)
    """About how many phone screens (375 px wide) the HTML email may fill; the stories
    past that are left to the full web edition, and the footer says how many."""


class SmtpConfig(ConfigModel):
    """SMTP server settings. The password only comes from ``NEWSLETTER_SMTP_PASSWORD``."""

    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    timeout: float = Field(30.0, gt=0)
    pool_size: int = Field(2, ge=1, le=32)
    rate_limit: float | None = Field(None, gt=0)
    """Messages per second, or no limit."""
    tries_per_run: int = Field(3, ge=1, le=20)
    """Attempts at one message within a run (4xx, timeouts, dropped connections)."""
    backoff: float = Field(1.0, ge=0, le=300)
    """Seconds before the second attempt within a run; doubles each time, with jitter."""
    retry_delay: str = "5m"
    """After a run's attempts fail: wait this long (doubling per run) before the next."""
    max_attempts: int = Field(5, ge=1, le=100)
    """Runs that may try one message before it is marked failed."""

    @field_validator("retry_delay")
    @classmethod
    def _retry_delay(cls, v: str) -> str:
        parse_duration(v)
        return v


class BouncesConfig(ConfigModel):
    """Bounces, complaints and unsubscribe mails (see docs/operating.md, "Bounces and
    complaints"). Each message carries a signed token (``X-Newsletter-Token``, and the
    envelope sender when ``address`` is set) that ties a report to its subscriber and
    edition. Secrets only come from the environment (``NEWSLETTER_BOUNCES_*``)."""

    address: str | None = None
    """The bounce address: with ``bounces@example.org`` each message's envelope sender is
    ``bounces+<token>@example.org`` (VERP). None: the ``From`` address, token in a header."""
    hard_limit: int = Field(1, ge=1, le=100)
    """Hard bounces (5.x.x) of an address before it is deactivated."""
    soft_streak: int = Field(3, ge=1, le=100)
    """Consecutive editions with a soft bounce (4.x.x) before it is deactivated."""
    imap_host: str | None = None
    """The mailbox the bounces reach; None: no mailbox is read (the HTTP endpoint still is)."""
    imap_port: int = Field(993, ge=1, le=65535)
    imap_security: Literal["none", "starttls", "tls"] = "tls"
    """``none`` is only accepted for a server on this machine (127.0.0.1, ::1, localhost)."""
    imap_username: str | None = None
    imap_password: SecretStr | None = None
    """Only from ``NEWSLETTER_BOUNCES_IMAP_PASSWORD``."""
    imap_folder: str = "INBOX"
    processed_folder: str | None = None
    """Move messages read here once done; None: leave them, flagged ``$NewsletterDone``."""
    poll_interval: PollInterval = "10m"
    """How often the daemon reads the mailbox."""
    webhook_secret: SecretStr | None = None
    """HMAC-SHA256 key of ``POST /bounces/raw`` and ``/bounces/events`` (from
    ``NEWSLETTER_BOUNCES_WEBHOOK_SECRET``); None: those endpoints answer 404."""
    mailgun_signing_key: SecretStr | None = None
    """Mailgun's webhook signing key for ``/bounces/mailgun`` (only from
    ``NEWSLETTER_BOUNCES_MAILGUN_KEY``); None: that endpoint answers 404."""

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None and (v.count("@") != 1 or "+" in v or not v.isascii() or " " in v):
            raise ValueError("must be a plain address without '+', like bounces@example.org")
        return v
