"""Markdown made HTML: the editor's note and the HTML part of Markdown-format mail.

Pure. Python-Markdown renders (with its ``extra`` tables, fenced code and footnotes, and
``sane_lists``), then nh3 keeps a small allow-list of tags and attributes: a note comes
from a file anyone with access to the config may edit, so it is treated like feed HTML
(no scripts, styles, event handlers or ``javascript:`` links). Imported only when there
is Markdown to render: Python-Markdown costs a few hundredths of a second to load.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import markdown
import nh3
from markupsafe import Markup

from newsletter.render.templates import render_template

if TYPE_CHECKING:
    import jinja2

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s",
        "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align"},
    "th": {"align"},
    "ol": {"start"},
    "li": {"id"},
    "sup": {"id"},
    "div": {"class"},
}
EXTENSIONS = ("extra", "sane_lists")
MARKDOWN_HTML_TEMPLATE = "email.markdown.html.j2"
"""The page around the HTML part of a Markdown-format email."""


@functools.lru_cache(maxsize=1)
def _cleaner() -> nh3.Cleaner:
    # Built once: building the sanitizer costs as much as cleaning a short note.
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def markdown_to_html(source: str) -> str:
    """``source`` (Markdown) as sanitized HTML: an HTML fragment, ``""`` for blank
    ``source``. Raw HTML in the source is kept only where the allow-list allows it, and
    relative links stay relative (the Markdown mail's personal links are placeholders
    until each message is written)."""
    if not source.strip():
        return ""
    html = markdown.markdown(source, extensions=list(EXTENSIONS), output_format="html")
    return _cleaner().clean(html).strip()


def markdown_email_html(env: jinja2.Environment, markdown_text: str, subject: str) -> str:
    """The text/html part of a Markdown-format email: its Markdown (the text/plain part)
    rendered and sanitized, in ``email.markdown.html.j2``. The placeholders of the
    personal parts pass through as text and link targets, filled in per message."""
    body = Markup(markdown_to_html(markdown_text))  # sanitized by nh3: safe to output as is
    return render_template(env, MARKDOWN_HTML_TEMPLATE, {"subject": subject, "body": body})


__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "MARKDOWN_HTML_TEMPLATE",
    "markdown_email_html",
    "markdown_to_html",
]
