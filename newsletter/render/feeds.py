"""Digest -> RSS 2.0 / Atom (feedgen)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from newsletter.errors import TemplateError
from newsletter.models import Digest, Item
from newsletter.render.templates import safe_url

if TYPE_CHECKING:
    # Imported where they are used: together they take a tenth of a second, which every
    # command that only needs FORMATS or now_utc (``newsletter fetch``) would pay.
    pass


# Characters XML 1.0 forbids; feed titles from the wild sometimes carry them.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def strip_xml_illegal(text: str) -> str:
    """Remove characters that XML 1.0 cannot carry."""
    return _XML_ILLEGAL.sub("", text)


def _item_html(item: Item, source_label: str) -> str:
    from html import escape

    parts = []
    if item.summary:
        parts.append(f"<p>{escape(item.summary)}</p>")
    meta = [escape(source_label)]
    e = item.engagement
    if e.upvotes is not None:
        meta.append(f"{e.upvotes} upvotes")
    if e.points is not None:
        meta.append(f"{e.points} points")
    if e.comments is not None:
        meta.append(f"{e.comments} comments")
    parts.append(f"<p><small>{' · '.join(meta)}</small></p>")
    if len(item.duplicates):
        also = ", ".join(
            f'<a href="{escape(safe_url(d.link), quote=True)}">{escape(d.source)}</a>'
            for d in item.duplicates
            if safe_url(d.link)
        )
        if also:
            parts.append(f"<p><small>Also on: {also}</small></p>")
    return "\n".join(parts)


def render_feed(digest: Digest, fmt: Literal["rss", "atom"]) -> bytes:
    """The digest's items as an RSS 2.0 or Atom feed (valid: every item has an id/guid,
    RFC 822 / RFC 3339 dates, escaped content)."""
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    link = safe_url(digest.link) or "https://example.org/"
    fg.id(f"{link.rstrip('/')}/{digest.name}")
    fg.title(strip_xml_illegal(digest.title) or digest.name)
    fg.link(href=link, rel="alternate")
    fg.description(strip_xml_illegal(digest.description) or digest.title or digest.name)
    fg.subtitle(strip_xml_illegal(digest.description) or digest.title or digest.name)
    fg.language("en")
    fg.generator("newsletter")
    fg.updated(digest.generated_at)
    fg.lastBuildDate(digest.generated_at)
    # feedgen prepends entries; add in reverse so the feed keeps the digest's order.
    for section in reversed(digest.sections):
        for item in reversed(section.items):
            e = item.entry
            fe = fg.add_entry()
            entry_link = safe_url(e.link)
            guid = entry_link or f"urn:newsletter:{e.source}:{e.id}"
            fe.id(strip_xml_illegal(guid))
            fe.guid(strip_xml_illegal(guid), permalink=bool(entry_link))
            fe.title(strip_xml_illegal(e.title) or "(untitled)")
            if entry_link:
                fe.link(href=strip_xml_illegal(entry_link))
            when = e.when or digest.generated_at
            fe.published(when)
            fe.updated(e.updated or when)
            if e.author:
                fe.author(name=strip_xml_illegal(e.author))
            label = digest.sources[e.source].label if e.source in digest.sources else e.source
            fe.category(term=strip_xml_illegal(section.title))
            body = strip_xml_illegal(_item_html(item, label))
            fe.description(body)
            if fmt == "atom":
                fe.content(body, type="html")
    if digest.note.strip():
        _add_note(fg, digest, link, fmt)  # added last: feedgen puts it first
    return feed_bytes(fg, fmt, what=digest.name)


def _add_note(fg: Any, digest: Digest, link: str, fmt: Literal["rss", "atom"]) -> None:
    """The editor's note as the feed's first entry (its HTML from Python-Markdown,
    sanitized); its id follows the note's text, so a new note is a new entry."""
    import hashlib

    from newsletter.render.markdown_html import markdown_to_html

    key = hashlib.sha256(digest.note.encode("utf-8")).hexdigest()[:16]
    fe = fg.add_entry()
    fe.id(f"urn:newsletter:{digest.name}:note:{key}")
    fe.guid(f"urn:newsletter:{digest.name}:note:{key}", permalink=False)
    fe.title("Editor's note")
    fe.link(href=link)
    fe.published(digest.generated_at)
    fe.updated(digest.generated_at)
    body = strip_xml_illegal(markdown_to_html(digest.note))
    fe.description(body)
    if fmt == "atom":
        fe.content(body, type="html")


def feed_bytes(fg: Any, fmt: Literal["rss", "atom"], *, what: str) -> bytes:
    """A feedgen ``FeedGenerator`` serialized as RSS 2.0 or Atom; feedgen's complaints
    (a missing required field) become ``TemplateError`` naming the feed."""
    try:
        if fmt == "rss":
            return bytes(fg.rss_str(pretty=True))
        return bytes(fg.atom_str(pretty=True))
    except ValueError as exc:
        raise TemplateError(f"cannot build the {fmt} feed of {what}: {exc}") from None
