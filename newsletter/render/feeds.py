"""Digest -> RSS 2.0 / Atom (feedgen), valid for the W3C feed validator.

Every entry has an author (its own, else the digest's ``author``, else its title: Atom
requires one and readers show it), ``updated`` is never before ``published``, sources
are named by their title (``Source.label``), counts are in the singular for one ("1
comment"), and the feed links to itself (``rel="self"``) when its public URL is known.
RSS's ``author`` must be an email address, so RSS names people with ``dc:creator``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from newsletter.errors import TemplateError
from newsletter.models import Digest, Item
from newsletter.render.templates import safe_url

FeedFormat = Literal["rss", "atom"]

# Characters XML 1.0 forbids; feed titles from the wild sometimes carry them.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def strip_xml_illegal(text: str) -> str:
    """Remove characters that XML 1.0 cannot carry."""
    return _XML_ILLEGAL.sub("", text)


def counted(n: int, word: str) -> str:
    """``1 comment``, ``2 comments``, ``0 points``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _item_html(item: Item, digest: Digest) -> str:
    from html import escape

    def label(name: str) -> str:
        return digest.sources[name].label if name in digest.sources else name

    parts = []
    if item.summary:
        parts.append(f"<p>{escape(item.summary)}</p>")
    meta = [escape(label(item.entry.source))]
    e = item.engagement
    if e.upvotes is not None:
        meta.append(counted(e.upvotes, "upvote"))
    if e.points is not None:
        meta.append(counted(e.points, "point"))
    if e.comments is not None:
        meta.append(counted(e.comments, "comment"))
    parts.append(f"<p><small>{' · '.join(meta)}</small></p>")
    if len(item.duplicates):
        also = ", ".join(
            f'<a href="{escape(safe_url(d.link), quote=True)}">{escape(label(d.source))}</a>'
            for d in item.duplicates
            if safe_url(d.link)
        )
        if also:
            parts.append(f"<p><small>Also on: {also}</small></p>")
    return "\n".join(parts)


def digest_author(digest: Digest) -> str:
    """The name a feed gives as its author: the digest's (its from name), else its title."""
    return strip_xml_illegal(digest.author).strip() or _title(digest)


def _title(digest: Digest) -> str:
    return strip_xml_illegal(digest.title).strip() or digest.name


def render_feed(digest: Digest, fmt: FeedFormat) -> bytes:
    """The digest's items as an RSS 2.0 or Atom feed: every item has an id/guid, an
    author, RFC 822 / RFC 3339 dates with ``updated`` not before ``published``, and
    escaped content; ``digest.feed_urls[fmt]``, when given, is the ``rel="self"`` link."""
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    if fmt == "rss":
        fg.load_extension("dc", atom=False, rss=True)
    link = safe_url(digest.link) or "https://example.org/"
    fg.id(f"{link.rstrip('/')}/{digest.name}")
    fg.title(_title(digest))
    author = digest_author(digest)
    fg.author(name=author)
    self_url = safe_url(digest.feed_urls.get(fmt, "")) or _file_url(digest.feed_urls.get(fmt))
    # feedgen gives RSS the last link added: the alternate one must come last.
    if self_url:
        fg.link(
            href=self_url,
            rel="self",
            type="application/rss+xml" if fmt == "rss" else "application/atom+xml",
        )
    fg.link(href=link, rel="alternate")
    fg.description(strip_xml_illegal(digest.description) or _title(digest))
    fg.subtitle(strip_xml_illegal(digest.description) or _title(digest))
    fg.language("en")
    fg.generator("newsletter")
    latest = digest.generated_at
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
            published = e.when or digest.generated_at
            # An entry "updated" before it was published is a contradiction validators
            # flag; feeds in the wild have it (a stale <updated>, a re-dated post).
            updated = max(e.updated or published, published)
            latest = max(latest, updated)
            fe.published(published)
            fe.updated(updated)
            name = strip_xml_illegal(e.author or "").strip()
            # Said on each entry: the feed-level author would do for Atom, but many
            # readers (feedparser among them) do not carry it down to the entries.
            if fmt == "rss":
                fe.dc.dc_creator(name or author)
            else:
                fe.author(name=name or author)
            fe.category(term=strip_xml_illegal(section.title) or "Other")
            body = strip_xml_illegal(_item_html(item, digest))
            fe.description(body)
            if fmt == "atom":
                fe.content(body, type="html")
    if digest.note.strip():
        _add_note(fg, digest, link, fmt, author)  # added last: feedgen puts it first
    fg.updated(latest)
    fg.lastBuildDate(latest)
    return feed_bytes(fg, fmt, what=digest.name)


def _add_note(fg: Any, digest: Digest, link: str, fmt: FeedFormat, author: str) -> None:
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
    if fmt == "rss":
        fe.dc.dc_creator(author)
    else:
        fe.author(name=author)
    body = strip_xml_illegal(markdown_to_html(digest.note))
    fe.description(body)
    if fmt == "atom":
        fe.content(body, type="html")


def _file_url(value: str | None) -> str:
    return value if value and value.startswith("file:///") else ""


def feed_bytes(fg: Any, fmt: FeedFormat, *, what: str) -> bytes:
    """A feedgen ``FeedGenerator`` serialized as RSS 2.0 or Atom; feedgen's complaints
    (a missing required field) become ``TemplateError`` naming the feed."""
    try:
        if fmt == "rss":
            return bytes(fg.rss_str(pretty=True))
        return bytes(fg.atom_str(pretty=True))
    except ValueError as exc:
        raise TemplateError(f"cannot build the {fmt} feed of {what}: {exc}") from None
