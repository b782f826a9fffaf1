"""Settings: small validated value objects, defaults as named constants, one loader.

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
    NEWSLETTER_BOUNCES_IMAP_PASSWORD / _WEBHOOK_SECRET / _MAILGUN_KEY
                                 bounces.* secrets
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from newsletter import __version__
from newsletter.config_errors import (
    check_references,
    config_problem,
    missing_config,
    syntax_example,
)
from newsletter.errors import ConfigError
from newsletter.models import Source
from newsletter.paths import default_config_path, default_database_url

# Fetching (``[fetch]``): read by ``newsletter.sources.fetch`` from ``FetchConfig``.
DEFAULT_USER_AGENT = f"newsletter/{__version__} (+https://github.com/newsletter/newsletter)"
DEFAULT_CONCURRENCY = 16
DEFAULT_PER_HOST = 4
DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_MAX_REDIRECTS = 5

DEFAULT_MAX_ITEMS = 50
DEFAULT_MAX_CANDIDATES = 10_000
DEFAULT_MAX_CANDIDATES_PER_SOURCE = 2_000
DEFAULT_SUMMARY_CHARS = 280
DEFAULT_HALF_LIFE_HOURS = 24.0
DEFAULT_SCHEDULE = "0 7 * * *"
DEFAULT_GRACE = "3h"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError("must be a short name of letters, digits, '-', '_' or '.'")
    return v


def _check_patterns(v: tuple[str, ...]) -> tuple[str, ...]:
    for p in v:
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"{p!r} is not a valid regular expression ({exc})") from exc
    return v


def parse_duration(value: str) -> timedelta:
    """``"36h"``, ``"7d"``, ``"90m"``, ``"2w"``, ``"30s"`` -> timedelta; ValueError otherwise."""
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a duration like 36h, 7d, 90m or 2w")
    return timedelta(seconds=float(m.group(1)) * _DURATION_UNITS[m.group(2).lower()])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FetchConfig(_Model):
    """How sources are downloaded. ``timeout`` bounds each request in total (connect,
    every redirect hop and the body), not each socket operation."""

    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=512)
    """Requests in flight in all."""
    per_host: int = Field(DEFAULT_PER_HOST, ge=1, le=64)
    """Requests in flight against one host."""
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, le=600)
    max_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1024)
    """The largest body accepted (decoded bytes)."""
    user_agent: str = DEFAULT_USER_AGENT
    max_redirects: int = Field(DEFAULT_MAX_REDIRECTS, ge=0, le=20)
    """Redirect hops followed before a fetch gives up."""
    local_root: str | tuple[str, ...] | None = None
    """The folder (or folders) ``file://`` sources and plain paths may be read from;
    relative to the config file's folder. Unset: the config file's folder (the working
    directory without a config file). A local source anywhere else is refused, so a
    source cannot read ``/proc/self/environ`` or the config's secrets."""
    poll_interval: str = "30m"
    """How often ``newsletter run`` fetches each source (``run --poll-interval`` wins)."""

    @field_validator("poll_interval")
    @classmethod
    def _poll_interval(cls, v: str) -> str:
        if parse_duration(v) < timedelta(minutes=1):
            raise ValueError("must be at least 1m")
        return v


class SourceConfig(_Model):
    """One source: a feed URL or path, or a paper list."""

    name: str
    url: str
    kind: Literal["auto", "feed", "hf-papers"] = "auto"
    weight: float = Field(1.0, ge=0, le=100)
    title: str | None = None

    _name = field_validator("name")(_check_name)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must be a URL (https://...) or a file path")
        return v.strip()

    def to_source(self) -> Source:
        """The pipeline's value for this source."""
        return Source(
            name=self.name, url=self.url, kind=self.kind, weight=self.weight, title=self.title
        )


class TopicConfig(_Model):
    """A configured topic section: entries matching a keyword or pattern go there first."""

    name: str
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    _patterns = field_validator("patterns")(_check_patterns)


class OutputsConfig(_Model):
    """Files a digest run writes (any subset)."""

    markdown: str | None = None
    html: str | None = None
    text: str | None = None
    rss: str | None = None
    atom: str | None = None


class RankingConfig(_Model):
    """Weights of the ranking score (see ``newsletter.summarize.rank`` for the formula;
    each part is ``weight x a signal between 0 and 1``)."""

    half_life_hours: float = Field(DEFAULT_HALF_LIFE_HOURS, gt=0)
    freshness_weight: float = Field(1.0, ge=0)
    no_date_freshness: float = Field(0.5, ge=0, le=1)
    """Fraction of ``freshness_weight`` for items without any date."""
    engagement_weight: float = Field(1.0, ge=0)
    engagement_reference: float = Field(100.0, gt=0)
    """The signal at which engagement reaches tanh(1) ~ 0.76 of its weight."""
    comment_weight: float = Field(0.5, ge=0)
    """How much one comment counts next to one point or upvote."""
    unknown_engagement: float = Field(0.5, ge=0, le=1)
    """Fraction of ``engagement_weight`` for items without signals when the batch has none."""
    source_weight: float = Field(0.5, ge=0)
    """Score added per doubling of a source's configured weight."""
    duplicate_bonus: float = Field(0.0, ge=0)
    """Score added per doubling of the number of distinct sources of a story. 0 by
    default: a reader sees each source's own signals, not a bonus for being on several,
    so with it the order inside a section no longer follows what is shown."""
    fair_share: float | None = Field(1.0, ge=1.0)
    """When several sources contribute, none takes more than this multiple of an equal
    share of the items (``max_items / sources``, rounded up) while another source still
    has candidates; unset (no value) lets the score alone decide."""
    interest_boost: float = Field(0.5, ge=0)
    max_interest_matches: int = Field(3, ge=0, le=100)


class DigestConfig(_Model):
    """One digest: which sources, how grouped and ranked, where written, when sent."""

    name: str
    title: str = "Digest"
    description: str = ""
    link: str = ""
    sources: tuple[str, ...] = ()
    """Source names; empty means every configured source."""
    group_by: Literal["auto", "topic", "source", "none"] = "auto"
    topics: tuple[TopicConfig, ...] = ()
    max_items: int = Field(DEFAULT_MAX_ITEMS, ge=1, le=10_000)
    max_candidates: int = Field(DEFAULT_MAX_CANDIDATES, ge=1, le=1_000_000)
    """Entries one edition considers at most (the newest); the rest are left out, counted
    and logged: one huge feed cannot make an edition unbuildable."""
    max_candidates_per_source: int = Field(DEFAULT_MAX_CANDIDATES_PER_SOURCE, ge=1, le=1_000_000)
    """The same cap for each source, applied first."""
    max_sections: int = Field(8, ge=1, le=30)
    summary_chars: int = Field(DEFAULT_SUMMARY_CHARS, ge=40, le=5000)
    since: str | None = None
    """For a digest without a previous edition: how far back to look (e.g. ``"2d"``)."""
    schedule: str = DEFAULT_SCHEDULE
    timezone: str = "UTC"
    grace: str = DEFAULT_GRACE
    deadline: str | None = None
    """Past this long after its scheduled time an edition is never sent (e.g. "12h")."""
    local_hour: int | None = Field(None, ge=0, le=23)
    """Send at this hour of each subscriber's own time zone instead of on ``schedule``."""
    subject: str = "{title} — {headline}"
    """The email's subject: {title}, {headline} ("<top story> and 14 more"), {top},
    {more}, {date}, {count}, {name}, {period}."""
    min_items: int = Field(1, ge=1, le=10_000)
    """Sending rule: an edition goes out only with at least this many new items; with
    fewer it waits (the items carry over to the next run)."""
    max_per_source: int | None = Field(None, ge=1, le=10_000)
    """Sending rule: at most this many items of one source in an edition (its newest)."""
    include: tuple[str, ...] = ()
    """Sending rule: only items that mention one of these keywords (whole words or
    phrases, any case) or match one of ``include_patterns``; empty: every item."""
    include_patterns: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    """Sending rule: items that mention one of these keywords, or match one of
    ``exclude_patterns``, are left out."""
    exclude_patterns: tuple[str, ...] = ()
    outputs: OutputsConfig = OutputsConfig()
    ranking: RankingConfig = RankingConfig()
    # -- the editor's note (issue 10) --
    note: str | None = None
    """A Markdown file: the editor's note at the top of each edition (HTML email, web
    edition, feeds; as written in the Markdown and text outputs), read when the edition
    is built. ``{period}`` in the path picks a file per edition (missing: no note);
    without it the file must exist. ``--note FILE.md`` on ``send``/``digest`` overrides."""

    _name = field_validator("name")(_check_name)

    @field_validator("note")
    @classmethod
    def _note(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not v.strip():
            raise ValueError("must be the path of a Markdown file")
        rest = v.replace("{period}", "")
        if "{" in rest or "}" in rest:
            raise ValueError("may only contain {period} (the edition's date) in braces")
        return v

    _rule_patterns = field_validator("include_patterns", "exclude_patterns")(_check_patterns)

    @field_validator("since", "grace", "deadline")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        if len(v.split()) != 5:
            raise ValueError("must be a cron expression of five fields")
        try:
            CronTrigger.from_crontab(v)
        except ValueError as exc:
            raise ValueError(f"is not a valid cron expression ({exc})") from exc
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone name") from exc
        return v


class MailConfig(_Model):
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


class SmtpConfig(_Model):
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


class WebConfig(_Model):
    """The web endpoints (subscribe, unsubscribe, archive, feeds)."""

    base_url: str = "http://127.0.0.1:8025"
    host: str = "127.0.0.1"
    port: int = Field(8025, ge=1, le=65535)
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (``10.0.0.0/8``) of reverse proxies whose
    ``X-Forwarded-For`` is believed; from any other peer the header is ignored."""
    pending_max_age: str = "3d"
    """How long a confirmation link works; pending addresses older than this are removed."""
    allow_http_one_click: bool = False
    """Send ``List-Unsubscribe-Post`` even when ``base_url`` is http (local testing only:
    RFC 8058 requires https)."""

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for item in v:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or network like 10.0.0.0/8") from None
        return tuple(i.strip() for i in v)

    @field_validator("pending_max_age")
    @classmethod
    def _pending_max_age(cls, v: str) -> str:
        if parse_duration(v) < timedelta(minutes=10):
            raise ValueError("must be at least 10m")
        return v


class BouncesConfig(_Model):
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
    poll_interval: str = "10m"
    """How often the daemon reads the mailbox."""
    webhook_secret: SecretStr | None = None
    """HMAC-SHA256 key of ``POST /bounces/raw`` and ``/bounces/events`` (from
    ``NEWSLETTER_BOUNCES_WEBHOOK_SECRET``); None: those endpoints answer 404."""
    mailgun_signing_key: SecretStr | None = None
    """Mailgun's webhook signing key for ``/bounces/mailgun`` (only from
    ``NEWSLETTER_BOUNCES_MAILGUN_KEY``); None: that endpoint answers 404."""

    @field_validator("poll_interval")
    @classmethod
    def _poll_interval(cls, v: str) -> str:
        if parse_duration(v) < timedelta(minutes=1):
            raise ValueError("must be at least 1m")
        return v

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None and (v.count("@") != 1 or "+" in v or not v.isascii() or " " in v):
            raise ValueError("must be a plain address without '+', like bounces@example.org")
        return v


class LlmConfig(_Model):
    """The optional LLM summarizer (off by default): any OpenAI-compatible chat endpoint.

    The API key never comes from the file: it is read from the environment variable
    named by ``api_key_env`` (a local server such as Ollama needs none).
    """

    enabled: bool = False
    base_url: str = "http://localhost:11434/v1"
    model: str = "llama3.2"
    api_key_env: str = Field("NEWSLETTER_LLM_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout: float = Field(20.0, gt=0, le=600)
    """Seconds for one whole request; past it the extractive summary is kept."""
    max_concurrency: int = Field(4, ge=1, le=64)
    max_input_chars: int = Field(4000, ge=200, le=200_000)
    """How much of an item's text goes into its prompt."""
    item_words: int = Field(40, ge=5, le=300)
    """Length of an item's TL;DR, in words."""
    section_summaries: bool = True


class Settings(_Model):
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


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    for var, dotted in ENV_OVERRIDES.items():
        value = env.get(var)
        if value is None or value == "":
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        else:
            node[leaf] = value
    return data


def settings_from_dict(
    data: Mapping[str, Any],
    *,
    path: str | None = None,
    text: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Validate a parsed TOML document (plus environment overrides) into ``Settings``.

    ``text`` is the file's text, used only to find the line of a bad setting.
    """
    env = os.environ if env is None else env
    merged = _apply_env(_deep_copy(dict(data)), env)
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        problems = [
            config_problem(err, Settings, ENV_OVERRIDES, path=path, text=text, env=env)
            for err in exc.errors()
        ]
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        raise ConfigError.of(problems, path=path) from None
    if path is not None:
        settings = settings.model_copy(update={"path": path})
    settings = _with_local_roots(settings, path)
    check_references(settings, text)
    return settings


def _with_local_roots(settings: Settings, path: str | None) -> Settings:
    """``fetch.local_root`` as absolute folders: relative to the config file's folder,
    that folder when unset."""
    base = Path(path).expanduser().resolve().parent if path else Path.cwd()
    configured = settings.fetch.local_root
    roots = (configured,) if isinstance(configured, str) else tuple(configured or ())
    resolved = tuple(str((base / Path(r).expanduser()).resolve()) for r in roots if r.strip())
    fetch = settings.fetch.model_copy(update={"local_root": resolved or (str(base),)})
    return settings.model_copy(update={"fetch": fetch})


def load_config(path: str | Path | None = None, *, required: bool = False) -> Settings:
    """Read and validate a TOML config file.

    With ``path`` None, the default location is used if it exists, else built-in defaults
    (unless ``required``). Errors are ``ConfigError`` naming the file and line.
    """
    explicit = path is not None or "NEWSLETTER_CONFIG" in os.environ
    p = Path(path) if path is not None else default_config_path()
    if not p.exists():
        if explicit or required:
            how = (
                "--config"
                if path is not None
                else "$NEWSLETTER_CONFIG"
                if explicit
                else "the user config folder"
            )
            raise missing_config(p, how=how)
        return settings_from_dict({})
    try:
        raw = p.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"is not UTF-8 text ({exc.reason})", path=str(p)) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read ({exc.strerror})", path=str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(m.group(1)) if m else None
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        bad = text.splitlines()[line - 1].strip() if line and line <= len(text.splitlines()) else ""
        raise ConfigError(
            f"is not valid TOML: {reason}" + (f": {bad}" if bad else ""),
            path=str(p),
            line=line,
            example=syntax_example(text, line),
        ) from None
    return settings_from_dict(data, path=str(p), text=text)


def resolve_path(settings: Settings, value: str) -> Path:
    """A path from the config, relative to the working directory (as users expect when
    they run ``newsletter`` from their project folder)."""
    return Path(value).expanduser()


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d
