"""The whole configuration (``Settings``) and the ``NEWSLETTER_*`` variables that
override it (``ENV_OVERRIDES``)."""

from __future__ import annotations

from pydantic import Field

from newsletter.config.base import ConfigModel
from newsletter.config.digests import DigestConfig, FetchConfig, LlmConfig, SourceConfig
from newsletter.config.mail import BouncesConfig, MailConfig, SmtpConfig
from newsletter.config.web import WebConfig
from newsletter.errors import ConfigError
from newsletter.paths import default_database_url


class Settings(ConfigModel):
    """The whole configuration."""

    database_url: str | None = None
    template_dir: str | None = None
    fetch: FetchConfig = FetchConfig()
    sources: tuple[SourceConfig, ...] = ()
    digests: tuple[DigestConfig, ...] = ()
    mail: MailConfig = MailConfig()
    smtp: SmtpConfig = SmtpConfig()
    web: WebConfig = WebConfig()
    llm: LlmConfig = LlmConfig()
    bounces: BouncesConfig = BouncesConfig()
    path: str | None = Field(None, exclude=True)
    """The file the settings came from (for messages and relative paths)."""

    def resolved_database_url(self) -> str:
        """The database URL to use: the configured one, else SQLite in the data dir."""
        return self.database_url or default_database_url()

    def digest(self, name: str | None) -> DigestConfig:
        """The digest named ``name``, or the only/first one when ``name`` is None."""
        if name is None:
            if not self.digests:
                return DigestConfig(name="digest")
            return self.digests[0]
        for d in self.digests:
            if d.name == name:
                return d
        known = ", ".join(d.name for d in self.digests) or "none configured"
        raise ConfigError(
            f"no digest named {name!r} (known: {known})",
            path=self.path,
            setting="--digest",
        )

    def source_named(self, name: str) -> SourceConfig | None:
        for s in self.sources:
            if s.name == name:
                return s
        return None


# env var -> (dotted setting path, converter)
ENV_OVERRIDES: dict[str, str] = {
    "NEWSLETTER_DATABASE_URL": "database_url",
    "NEWSLETTER_TEMPLATE_DIR": "template_dir",
    "NEWSLETTER_USER_AGENT": "fetch.user_agent",
    "NEWSLETTER_FETCH_CONCURRENCY": "fetch.concurrency",
    "NEWSLETTER_FETCH_PER_HOST": "fetch.per_host",
    "NEWSLETTER_FETCH_TIMEOUT": "fetch.timeout",
    "NEWSLETTER_MAX_BYTES": "fetch.max_bytes",
    "NEWSLETTER_DELIVERY": "mail.delivery",
    "NEWSLETTER_MAIL_DIR": "mail.mail_dir",
    "NEWSLETTER_SMTP_HOST": "smtp.host",
    "NEWSLETTER_SMTP_PORT": "smtp.port",
    "NEWSLETTER_SMTP_SECURITY": "smtp.security",
    "NEWSLETTER_SMTP_USERNAME": "smtp.username",
    "NEWSLETTER_SMTP_PASSWORD": "smtp.password",
    "NEWSLETTER_BASE_URL": "web.base_url",
    "NEWSLETTER_LLM_BASE_URL": "llm.base_url",
    "NEWSLETTER_LLM_MODEL": "llm.model",
    "NEWSLETTER_BOUNCES_IMAP_PASSWORD": "bounces.imap_password",
    "NEWSLETTER_BOUNCES_WEBHOOK_SECRET": "bounces.webhook_secret",
    "NEWSLETTER_BOUNCES_MAILGUN_KEY": "bounces.mailgun_signing_key",
}
