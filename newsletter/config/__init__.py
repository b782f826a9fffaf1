"""Settings: small validated value objects, defaults as named constants, one loader.

The package re-exports every public name: ``from newsletter.config import Settings``.
``base`` (constants, durations, the base model), ``digests`` (fetch, sources, digests,
llm), ``mail`` (mail, smtp, bounces), ``web``, ``settings`` (``Settings``,
``ENV_OVERRIDES``), ``load`` (``load_config``: the only I/O), ``errors`` (how a bad
setting is reported: file, line, a valid example).

Precedence, highest first: command-line flag > ``NEWSLETTER_*`` environment variable >
config file > default. ``load_config(path)`` is the only function here that does I/O.

Environment overrides (see ``ENV_OVERRIDES``)::

    NEWSLETTER_CONFIG            config file to read when --config is not given
    NEWSLETTER_DATABASE_URL      database_url
    NEWSLETTER_TEMPLATE_DIR      template_dir
    NEWSLETTER_USER_AGENT        fetch.user_agent
    NEWSLETTER_FETCH_CONCURRENCY fetch.concurrency
    NEWSLETTER_FETCH_PER_HOST    fetch.per_host
    NEWSLETTER_FETCH_TIMEOUT     fetch.timeout
    NEWSLETTER_MAX_BYTES         fetch.max_bytes
    NEWSLETTER_DELIVERY          mail.delivery (smtp or file)
    NEWSLETTER_MAIL_DIR          mail.mail_dir
    NEWSLETTER_SMTP_HOST / _PORT / _SECURITY / _USERNAME / _PASSWORD   smtp.*
    NEWSLETTER_BASE_URL          web.base_url
    NEWSLETTER_LLM_BASE_URL      llm.base_url
    NEWSLETTER_LLM_MODEL         llm.model
    NEWSLETTER_LLM_API_KEY       the LLM API key (the variable named by llm.api_key_env)
    NEWSLETTER_CACHE_DIR         compiled templates (newsletter.paths, not a setting)
    NEWSLETTER_BOUNCES_IMAP_PASSWORD / _WEBHOOK_SECRET / _MAILGUN_KEY
                                 bounces.* secrets
"""

from __future__ import annotations

from newsletter.config.base import (
    DEFAULT_CONCURRENCY,
    DEFAULT_GRACE,
    DEFAULT_HALF_LIFE_HOURS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CANDIDATES,
    DEFAULT_MAX_CANDIDATES_PER_SOURCE,
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_REDIRECTS,
    DEFAULT_PER_HOST,
    DEFAULT_SCHEDULE,
    DEFAULT_SUMMARY_CHARS,
    DEFAULT_TIMEOUT,
    DEFAULT_USER_AGENT,
    ConfigModel,
    check_name,
    check_patterns,
    parse_duration,
)
from newsletter.config.digests import (
    DigestConfig,
    FetchConfig,
    LlmConfig,
    OutputsConfig,
    RankingConfig,
    SourceConfig,
    TopicConfig,
)
from newsletter.config.load import load_config, resolve_path, settings_from_dict
from newsletter.config.mail import BouncesConfig, MailConfig, SmtpConfig
from newsletter.config.settings import Settings
from newsletter.config.web import WebConfig

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_GRACE",
    "DEFAULT_HALF_LIFE_HOURS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_CANDIDATES",
    "DEFAULT_MAX_CANDIDATES_PER_SOURCE",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_PER_HOST",
    "DEFAULT_SCHEDULE",
    "DEFAULT_SUMMARY_CHARS",
    "DEFAULT_TIMEOUT",
    "DEFAULT_USER_AGENT",
    "BouncesConfig",
    "ConfigModel",
    "DigestConfig",
    "FetchConfig",
    "LlmConfig",
    "MailConfig",
    "OutputsConfig",
    "RankingConfig",
    "Settings",
    "SmtpConfig",
    "SourceConfig",
    "TopicConfig",
    "WebConfig",
    "check_name",
    "check_patterns",
    "load_config",
    "parse_duration",
    "resolve_path",
    "settings_from_dict",
]
