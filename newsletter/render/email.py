"""A digest as an email: rendered once per distinct content, personalized per message.

Pure: no network, disk or clock (``now`` and the per-subscriber parts are passed in).

``render_email`` renders the HTML (CSS inlined with css-inline, one ``<style>`` kept for
media queries and dark mode) and the plain text (``email.txt.j2``: wrapped, links as
numbered references, see ``render.text``) once, with placeholders where each
subscriber's greeting and unsubscribe link go. A Markdown-format subscriber's text is
the Markdown (``email.md.j2``) and the HTML is that Markdown through Python-Markdown.
``render.message.message_bytes`` fills those in and writes the message in its wire
form (not through ``email.generator``: Python's header folding RFC 2047-encodes any
token of 77+ characters, which would mangle the long ``List-Unsubscribe`` URL that
one-click unsubscribe needs verbatim).

The message::

    multipart/alternative
    ├── text/plain; charset=utf-8    quoted-printable: wrapped text (Markdown subscribers:
    │                                the Markdown)
    └── text/html; charset=utf-8     quoted-printable, under 90 KB (Markdown subscribers:
                                     the Markdown rendered and sanitized)
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.utils import parseaddr
from typing import NamedTuple
from urllib.parse import quote

import css_inline
import jinja2

from newsletter.config import DigestConfig, MailConfig, Settings
from newsletter.errors import ConfigError, TemplateError
from newsletter.models import Digest, MailFormat, Section
from newsletter.render.digest import digest_context
from newsletter.render.mail_layout import MailLayout, plan_layout
from newsletter.render.mime import chunks
from newsletter.render.templates import (
    edition_day,
    format_date,
    make_environment,
    render_template,
    safe_url,
)

HTML_TEMPLATE = "email.html.j2"
TEXT_TEMPLATE = "email.txt.j2"
"""The text/plain part of an HTML-format email: wrapped text, links as references."""
MARKDOWN_TEMPLATE = "email.md.j2"
"""A Markdown-format email: its text/plain part, and through Python-Markdown its HTML
(``render.markdown_html.markdown_email_html``)."""
MAX_HTML_BYTES = 90_000
"""Gmail clips HTML over 102 KB; stay well under with room for personal parts."""
DEFAULT_SUBJECT = DigestConfig.model_fields["subject"].default
DEFAULT_MAIL = MailConfig()
LOGO_WIDTH = 120
LOGO_HEIGHT = 40
"""The size a logo is shown at (``mail.logo_url``)."""
_PERSONAL_RESERVE = 2_000
_MAX_HEADER_TEXT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")
_PREHEADER_PAD = "&#847;&zwnj;&nbsp;" * 40
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@dataclass(frozen=True, slots=True)
class MailSettings:
    """What a message needs besides the digest: the ``[mail]`` settings as configured,
    the web app's URL (unsubscribe and archive links hang off it; '' = none) and the
    digest's subject template (``for_digest`` takes them from the configuration)."""

    mail: MailConfig = DEFAULT_MAIL
    base_url: str = ""
    subject: str = DEFAULT_SUBJECT
    max_html_bytes: int = MAX_HTML_BYTES
    allow_http_one_click: bool = False  # web.allow_http_one_click: RFC 8058 wants https

    @classmethod
    def for_digest(cls, settings: Settings, digest: DigestConfig) -> MailSettings:
        """The mail settings of one configured digest."""
        web, one = settings.web, settings.web.allow_http_one_click
        return cls(settings.mail, web.base_url.rstrip("/"), digest.subject, MAX_HTML_BYTES, one)

    @property
    def sender(self) -> str:
        """The bare envelope sender address."""
        return parseaddr(self.mail.from_address)[1]

    @property
    def unsubscribe_address(self) -> str:
        """The mailto target of List-Unsubscribe."""
        return self.mail.unsubscribe_address or f"unsubscribe@{self.mail.domain}"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """The shared part of a message, rendered once for every subscriber with the same
    content. ``text`` and ``html`` hold placeholders for the personal parts."""

    digest_name: str
    period: str
    subject: str
    format: MailFormat
    text: str
    html: str | None
    placeholders: tuple[str, str, str]
    """(greeting, unsubscribe URL, manage URL) markers."""
    items: int
    omitted: int
    boundary: str
    text_chunks: tuple[bytes | str, ...] = ()
    html_chunks: tuple[bytes | str, ...] = ()
    """Bodies split at line ends: lines without placeholders are quoted-printable
    already (bytes), lines with one are left as text to fill in and encode per message.
    Quoted-printable works line by line, so the pieces join into the same bytes."""

    @property
    def html_size(self) -> int:
        """Bytes of the HTML part before transfer encoding."""
        return len(self.html.encode("utf-8")) if self.html is not None else 0


# -- helpers -------------------------------------------------------------------------------


def clean_header_text(value: object, limit: int = _MAX_HEADER_TEXT) -> str:
    """Text safe for a header: control characters (CR/LF) become spaces, whitespace is
    collapsed, length capped."""
    text = " ".join(_CONTROL.sub(" ", str(value)).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@functools.lru_cache(maxsize=8)
def mail_environment(template_dir: str | None = None) -> jinja2.Environment:
    """The render environment plus the filters the email templates use (cached: the
    templates are compiled once per process)."""
    return make_environment(template_dir)


TOP_STORY_CHARS = 80
"""The longest a top story's title runs in a subject before it is shortened."""


def _top_story(digest: Digest) -> str:
    items = digest.items
    if not items:
        return ""
    best = min(range(len(items)), key=lambda i: (-items[i].score, i))
    title = clean_header_text(items[best].entry.title, 500)
    if len(title) <= TOP_STORY_CHARS:
        return title
    cut = title[: TOP_STORY_CHARS - 1].rsplit(" ", 1)[0].rstrip(" ,;:—-")
    return (cut or title[: TOP_STORY_CHARS - 1]) + "…"


def subject_for(template: str, digest: Digest, period: str) -> str:
    """The subject line from the configured template, cleaned of anything a header
    cannot hold. Fields: ``{title}``, ``{date}``, ``{name}``, ``{count}``, ``{period}``,
    ``{top}`` (the best-scored story's title), ``{more}`` (how many others the email
    holds) and ``{headline}`` ("<top> and 14 more"; "<top>" alone; the date when empty)."""
    date_text = format_date(edition_day(period, digest.generated_at))
    top = _top_story(digest)
    more = max(0, digest.item_count - 1)
    headline = f"{top} and {more} more" if top and more else (top or date_text)
    values = {
        "title": clean_header_text(digest.title),
        "date": date_text,
        "period": period,
        "name": digest.name,
        "count": digest.item_count,
        "top": top,
        "more": more,
        "headline": headline,
    }
    try:
        text = template.format_map(values)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise ConfigError(
            f"is not a valid subject template ({exc}); use {{title}}, {{headline}}, "
            "{top}, {more}, {date}, {count}",
            setting="digests.subject",
            example='subject = "{title} — {headline}"',
        ) from None
    return clean_header_text(text) or digest.title or digest.name


def cap_items(digest: Digest, limit: int) -> Digest:
    """The digest with at most ``limit`` items: the best-scored are kept, in their
    sections and order; the rest are counted in ``omitted``."""
    items = digest.items
    if len(items) <= limit:
        return digest
    ranked = sorted(range(len(items)), key=lambda i: (-items[i].score, i))
    keep = {id(items[i]) for i in ranked[:limit]}
    sections: list[Section] = []
    for s in digest.sections:
        kept = tuple(it for it in s.items if id(it) in keep)
        if kept:
            sections.append(replace(s, items=kept))
    return replace(digest, sections=tuple(sections), omitted=digest.omitted + len(items) - limit)


def _preheader(layout: MailLayout) -> str:
    """The inbox's preview line: the titles after the top story (already the subject)."""
    cards = [*layout.highlights[1:], *(c for s in layout.sections for c in s.cards)]
    if not cards:
        cards = list(layout.highlights)
    titles = [clean_header_text(c.title, 80) for c in cards[:4]]
    text = " · ".join(t for t in titles if t) or "Nothing new this time."
    return text[:150]


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def archive_url(settings: MailSettings, digest: str, period: str) -> str:
    """Where the web archive shows this edition ('' without a base URL)."""
    if not settings.base_url:
        return ""
    return f"{settings.base_url}/archive/{quote(digest)}/{quote(period)}"


def unsubscribe_url(settings: MailSettings, token: str) -> str:
    """The one-click unsubscribe URL for a signed token ('' without a base URL)."""
    return f"{settings.base_url}/unsubscribe/{token}" if settings.base_url else ""


def manage_url(settings: MailSettings, token: str) -> str:
    """The preference page's URL for a signed ``prefs`` token ('' without a base URL)."""
    return f"{settings.base_url}/prefs/{token}" if settings.base_url else ""


def unsubscribe_mailto(settings: MailSettings, token: str) -> str:
    """``mailto:`` unsubscribe link carrying the token in the subject."""
    return f"mailto:{settings.unsubscribe_address}?subject={quote('unsubscribe ' + token)}"


# -- render once ---------------------------------------------------------------------------


def render_email(
    digest: Digest,
    *,
    period: str,
    settings: MailSettings,
    fmt: MailFormat = "html",
    env: jinja2.Environment | None = None,
    nonce: str | None = None,
) -> RenderedEmail:
    """Render the shared part of a digest email.

    The HTML email shows ``mail.highlights`` stories in full and the best of the rest as
    compact lines, within about ``mail.screens`` phone screens and ``mail.max_items``
    stories (``mail_layout.plan_layout``), and fewer while the HTML would exceed
    ``max_html_bytes``. The text part holds the same stories. The footer counts what was
    left out and links to the full web edition.
    """
    env = env or mail_environment()
    nonce = nonce or secrets.token_hex(8)
    ph_greet, ph_unsub, ph_manage = f"NLPH{nonce}G", f"NLPH{nonce}U", f"NLPH{nonce}M"
    day = edition_day(period, digest.generated_at)
    mail = settings.mail
    extra = {
        "greeting": ph_greet,
        "unsubscribe_url": ph_unsub,
        "manage_url": ph_manage if settings.base_url else "",
        "archive_url": archive_url(settings, digest.name, period),
        "preheader_pad": _PREHEADER_PAD,
        "date_label": format_date(day, "%A %-d %B %Y"),
        "generated": day,
        "logo_url": mail.logo_url,
        "logo_width": LOGO_WIDTH,
        "logo_height": LOGO_HEIGHT,
    }
    max_items = mail.max_items
    layout = plan_layout(
        digest, highlights=mail.highlights, screens=mail.screens, max_items=max_items
    )
    budget = settings.max_html_bytes - _PERSONAL_RESERVE
    html_text: str | None = None
    if fmt == "html":
        for _ in range(12):
            ctx = _html_context(layout, digest, period, settings, extra)
            try:
                html_text = _INLINER.inline(render_template(env, HTML_TEMPLATE, ctx))
            except ValueError as exc:  # css-inline's errors are ValueError subclasses
                raise TemplateError(
                    f"template {HTML_TEMPLATE}: cannot inline CSS ({exc})"
                ) from None
            size = len(html_text.encode("utf-8"))
            count = layout.shown.item_count
            if size <= budget or count == 0:
                break
            max_items = max(0, min(count - 1, int(count * budget / size * 0.97)))
            layout = plan_layout(
                digest, highlights=mail.highlights, screens=mail.screens, max_items=max_items
            )
    else:
        # A Markdown subscriber reads no phone-screen layout: only ``max_items`` applies.
        layout = plan_layout(digest, highlights=0, screens=1e9, max_items=max_items)
    shown = layout.shown
    subject = subject_for(settings.subject, shown, period)
    text = render_template(env, text_template(fmt), digest_context(shown, subject=subject, **extra))
    if fmt == "markdown":
        # Imported here: only Markdown-format subscribers need Python-Markdown.
        from newsletter.render.markdown_html import markdown_email_html

        html_text = markdown_email_html(env, text, subject)
    boundary = "=_nl_" + hashlib.sha256(nonce.encode()).hexdigest()[:24]
    text = _crlf(text)
    html_text = _crlf(html_text) if html_text is not None else None
    marks = (ph_greet, ph_unsub, ph_manage)
    return RenderedEmail(
        digest_name=digest.name,
        period=period,
        subject=subject,
        format=fmt,
        text=text,
        html=html_text,
        placeholders=marks,
        items=shown.item_count,
        omitted=shown.omitted,
        boundary=boundary,
        text_chunks=chunks(text, marks),
        html_chunks=chunks(html_text, marks) if html_text is not None else (),
    )


def text_template(fmt: MailFormat) -> str:
    """The template of the text/plain part: wrapped text for an HTML-format email, the
    Markdown itself for a Markdown-format one."""
    return MARKDOWN_TEMPLATE if fmt == "markdown" else TEXT_TEMPLATE


def _html_context(
    layout: MailLayout,
    full: Digest,
    period: str,
    settings: MailSettings,
    extra: dict[str, object],
) -> dict[str, object]:
    shown = layout.shown
    subject = subject_for(settings.subject, shown, period)
    return digest_context(
        shown,
        subject=subject,
        preheader=_preheader(layout),
        highlights=layout.highlights,
        compact=layout.sections,
        left_out=layout.left_out,
        edition_count=full.item_count + full.omitted,
        **extra,
    )


# -- personalize per message ---------------------------------------------------------------


def first_name(name: str) -> str:
    """The name a greeting uses: ``Ada`` of ``Ada Lovelace`` and of ``Lovelace, Ada``."""
    text = clean_header_text(name, 200)
    if "," in text:
        text = text.split(",", 1)[1].strip() or text.split(",", 1)[0]
    words = text.replace(",", " ").split()
    return words[0][:60] if words else ""


def greeting(name: str) -> str:
    """``Hi Ada,`` (the first name of ``Ada Lovelace``) or ``Hello,`` without a name."""
    first = first_name(name)
    return f"Hi {first}," if first else "Hello,"


class ContentKey(NamedTuple):
    """What a message's content depends on: subscribers with equal keys share one
    rendering. Interests and topics are sorted and without repeats."""

    interests: tuple[str, ...]
    topics: tuple[str, ...]
    format: MailFormat


def content_key(interests: Sequence[str], topics: Sequence[str], fmt: MailFormat) -> ContentKey:
    """The key of a subscriber's preferences (order and repeats do not matter)."""
    return ContentKey(tuple(sorted(set(interests))), tuple(sorted(set(topics))), fmt)


__all__ = [
    "MAX_HTML_BYTES",
    "ContentKey",
    "MailSettings",
    "RenderedEmail",
    "cap_items",
    "clean_header_text",
    "content_key",
    "mail_environment",
    "manage_url",
    "render_email",
    "safe_url",
    "subject_for",
]
