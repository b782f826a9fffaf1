"""What to read and how to make a digest of it: ``[fetch]``, ``[[sources]]``,
``[[digests]]`` (topics, outputs, ranking) and ``[llm]``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

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
    PollInterval,
    check_name,
    check_patterns,
    parse_duration,
)
from newsletter.models import Source


class FetchConfig(ConfigModel):
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
    poll_interval: PollInterval = "30m"
    """How often ``newsletter run`` fetches each source (``run --poll-interval`` wins)."""


class SourceConfig(ConfigModel):
    """One source: a feed URL or path, or a paper list."""

    name: str
    url: str
    kind: Literal["auto", "feed", "hf-papers"] = "auto"
    weight: float = Field(1.0, ge=0, le=100)
    title: str | None = None

    _name = field_validator("name")(check_name)

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


class TopicConfig(ConfigModel):
    """A configured topic section: entries matching a keyword or pattern go there first."""

    name: str
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    _patterns = field_validator("patterns")(check_patterns)


class OutputsConfig(ConfigModel):
    """Files a digest run writes (any subset)."""

    markdown: str | None = None
    html: str | None = None
    text: str | None = None
    rss: str | None = None
    atom: str | None = None


class RankingConfig(ConfigModel):
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


class DigestConfig(ConfigModel):
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

    _name = field_validator("name")(check_name)

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

    _rule_patterns = field_validator("include_patterns", "exclude_patterns")(check_patterns)

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


class LlmConfig(ConfigModel):
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
