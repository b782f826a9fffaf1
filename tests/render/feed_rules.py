"""A feed checker for the tests: the W3C feed validator's level-A *errors* for the RSS 2.0
and Atom elements this project writes, with the validator's message names.

Why not the validator itself: the W3C feedvalidator (a Python program) has no installable
Python 3 build (no package on the Python package index or in Debian), so these rules are
written from RFC 4287 (Atom), the RSS 2.0 specification and the validator's documented
messages. They are stricter than the validator where that costs nothing (every link
absolute, an entry never ``updated`` before ``published``, every RSS item with an author),
and they check only what the rules name: an element nobody wrote a rule for is an error
(``UndefinedElement``), so a new element cannot slip through unchecked.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime

from lxml import etree

ATOM = "http://www.w3.org/2005/Atom"
DC = "http://purl.org/dc/elements/1.1/"
CONTENT = "http://purl.org/rss/1.0/modules/content/"

_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_RFC822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d\d:\d\d(:\d\d)? (GMT|UT|Z|[+-]\d{4}|EST|EDT|CST|CDT|MST|MDT|PST|PDT)$"
)
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
_URL = re.compile(r"^(https?|file)://[^\s<>\"{}|\\^`]+$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_EMAIL_FIRST = re.compile(r"^[^@\s()]+@[^@\s()]+\.[^@\s()]+( \(.+\))?$")

_ATOM_FEED = {"id", "title", "updated", "author", "link", "subtitle", "generator", "icon"}
_ATOM_FEED |= {"logo", "rights", "category", "contributor", "entry"}
_ATOM_ENTRY = {"id", "title", "updated", "published", "author", "link", "summary", "content"}
_ATOM_ENTRY |= {"category", "contributor", "rights", "source"}
_ONCE_FEED = ("id", "title", "updated")
_AT_MOST_ONCE_FEED = ("subtitle", "generator", "icon", "logo", "rights")
_LINK_RELS = {"alternate", "related", "self", "enclosure", "via"}

_RSS_CHANNEL = {"title", "link", "description", "language", "copyright", "managingEditor"}
_RSS_CHANNEL |= {"webMaster", "pubDate", "lastBuildDate", "category", "generator", "docs"}
_RSS_CHANNEL |= {"cloud", "ttl", "image", "rating", "textInput", "skipHours", "skipDays", "item"}
_RSS_ITEM = {"title", "link", "description", "author", "category", "comments", "enclosure"}
_RSS_ITEM |= {"guid", "pubDate", "source"}


def check_feed(data: bytes) -> list[str]:
    """The errors in an RSS 2.0 or Atom document (empty: valid)."""
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        return [f"NotWellFormed: {exc}"]
    if root.tag == f"{{{ATOM}}}feed":
        return _check_atom(root)
    if root.tag == "rss":
        return _check_rss(root)
    return [f"UnknownRoot: {root.tag}"]


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _text(el: etree._Element) -> str:
    return (el.text or "").strip()


def _date3339(el: etree._Element, where: str, errors: list[str]) -> datetime | None:
    value = _text(el)
    if not _RFC3339.match(value):
        errors.append(f"InvalidRFC3339Date: {where}/{_local(el)} {value!r}")
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _date822(el: etree._Element, where: str, errors: list[str]) -> None:
    value = _text(el)
    if not _RFC822.match(value):
        errors.append(f"InvalidRFC2822Date: {where}/{el.tag} {value!r}")
        return
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError):
        errors.append(f"InvalidRFC2822Date: {where}/{el.tag} {value!r}")


def _atom_children(el: etree._Element, allowed: set[str], where: str, errors: list[str]) -> None:
    for child in el:
        if not isinstance(child.tag, str):
            continue  # a comment
        ns = etree.QName(child).namespace
        if ns is None or (ns == ATOM and _local(child) not in allowed):
            errors.append(f"UndefinedElement: {where}/{child.tag}")


def _count(el: etree._Element, name: str) -> list[etree._Element]:
    return el.findall(f"{{{ATOM}}}{name}")


def _text_construct(el: etree._Element, where: str, errors: list[str]) -> None:
    kind = el.get("type", "text")
    if kind not in ("text", "html", "xhtml"):
        errors.append(f"InvalidTextType: {where}/{_local(el)} type={kind!r}")
    if kind in ("text", "html") and len(el):
        errors.append(f"NotEscaped: {where}/{_local(el)} holds markup as elements")
    if kind == "xhtml" and el.find("{http://www.w3.org/1999/xhtml}div") is None:
        errors.append(f"MissingXhtmlDiv: {where}/{_local(el)}")


def _person(el: etree._Element, where: str, errors: list[str]) -> None:
    names = _count(el, "name")
    if len(names) != 1 or not _text(names[0]):
        errors.append(f"MissingElement: {where}/author needs exactly one non-empty name")
    for uri in _count(el, "uri"):
        if not _IRI.match(_text(uri)):
            errors.append(f"InvalidIRI: {where}/author/uri {_text(uri)!r}")


def _links(el: etree._Element, where: str, errors: list[str]) -> list[str]:
    rels = []
    seen_alternate: set[tuple[str | None, str | None]] = set()
    for link in _count(el, "link"):
        href = link.get("href")
        rel = link.get("rel", "alternate")
        rels.append(rel)
        if not href:
            errors.append(f"MissingHref: {where}/link")
        elif not _IRI.match(href):
            errors.append(f"InvalidIRI: {where}/link href={href!r}")
        if rel not in _LINK_RELS and not _IRI.match(rel):
            errors.append(f"UnregisteredAtomLinkRel: {where}/link rel={rel!r}")
        if rel == "alternate":
            key = (link.get("type"), link.get("hreflang"))
            if key in seen_alternate:
                errors.append(f"DuplicateAtomLink: {where}/link rel=alternate {key}")
            seen_alternate.add(key)
    return rels


def _check_atom(feed: etree._Element) -> list[str]:
    errors: list[str] = []
    _atom_children(feed, _ATOM_FEED, "feed", errors)
    for name in _ONCE_FEED:
        if len(_count(feed, name)) != 1:
            errors.append(f"MissingElement: feed needs exactly one {name}")
    for name in _AT_MOST_ONCE_FEED:
        if len(_count(feed, name)) > 1:
            errors.append(f"DuplicateElement: feed/{name}")
    for el in _count(feed, "id"):
        if not _IRI.match(_text(el)):
            errors.append(f"InvalidIRI: feed/id {_text(el)!r}")
    for el in _count(feed, "updated"):
        _date3339(el, "feed", errors)
    for name in ("title", "subtitle", "rights"):
        for el in _count(feed, name):
            _text_construct(el, "feed", errors)
    for el in _count(feed, "author"):
        _person(el, "feed", errors)
    for el in _count(feed, "category"):
        if not el.get("term"):
            errors.append("MissingAttribute: feed/category term")
    _links(feed, "feed", errors)
    feed_author = bool(_count(feed, "author"))
    ids: set[str] = set()
    for n, entry in enumerate(_count(feed, "entry"), start=1):
        where = f"entry[{n}]"
        _atom_children(entry, _ATOM_ENTRY, where, errors)
        for name in ("id", "title", "updated"):
            if len(_count(entry, name)) != 1:
                errors.append(f"MissingElement: {where} needs exactly one {name}")
        for name in ("published", "summary", "content", "rights"):
            if len(_count(entry, name)) > 1:
                errors.append(f"DuplicateElement: {where}/{name}")
        for el in _count(entry, "id"):
            if not _IRI.match(_text(el)):
                errors.append(f"InvalidIRI: {where}/id {_text(el)!r}")
            if _text(el) in ids:
                errors.append(f"DuplicateEntries: {where}/id {_text(el)!r}")
            ids.add(_text(el))
        if not feed_author and not _count(entry, "author"):
            errors.append(f"MissingElement: {where} has no author and the feed has none")
        for el in _count(entry, "author"):
            _person(el, where, errors)
        updated = [_date3339(el, where, errors) for el in _count(entry, "updated")]
        published = [_date3339(el, where, errors) for el in _count(entry, "published")]
        if updated and published and updated[0] and published[0] and updated[0] < published[0]:
            errors.append(f"UpdatedBeforePublished: {where}")
        for name in ("title", "summary", "rights"):
            for el in _count(entry, name):
                _text_construct(el, where, errors)
        for el in _count(entry, "content"):
            if el.get("src") is None:
                _text_construct(el, where, errors)
            elif not _count(entry, "summary"):
                errors.append(f"MissingSummary: {where} content has src and no summary")
        for el in _count(entry, "category"):
            if not el.get("term"):
                errors.append(f"MissingAttribute: {where}/category term")
        rels = _links(entry, where, errors)
        if not _count(entry, "content") and "alternate" not in rels:
            errors.append(f"MissingContentOrAlternate: {where}")
    return errors


def _check_rss(rss: etree._Element) -> list[str]:
    errors: list[str] = []
    if rss.get("version") != "2.0":
        errors.append(f"InvalidVersion: rss version={rss.get('version')!r}")
    channels = rss.findall("channel")
    if len(channels) != 1:
        return [*errors, "MissingElement: rss needs exactly one channel"]
    channel = channels[0]
    for child in channel:
        if not isinstance(child.tag, str):
            continue
        ns = etree.QName(child).namespace
        if ns is None and child.tag not in _RSS_CHANNEL:
            errors.append(f"UndefinedElement: channel/{child.tag}")
        if ns == ATOM and _local(child) != "link":
            errors.append(f"UndefinedElement: channel/{child.tag}")
    for name in ("title", "link", "description"):
        found = channel.findall(name)
        if len(found) != 1 or not _text(found[0]):
            errors.append(f"MissingElement: channel needs exactly one non-empty {name}")
    for el in channel.findall("link"):
        if not _URL.match(_text(el)):
            errors.append(f"InvalidURLAttribute: channel/link {_text(el)!r}")
    for el in channel.findall("language"):
        if not _LANGUAGE.match(_text(el)):
            errors.append(f"InvalidLanguage: channel/language {_text(el)!r}")
    for name in ("pubDate", "lastBuildDate"):
        for el in channel.findall(name):
            _date822(el, "channel", errors)
    for name in ("managingEditor", "webMaster"):
        for el in channel.findall(name):
            if not _EMAIL_FIRST.match(_text(el)):
                errors.append(f"InvalidContact: channel/{name} {_text(el)!r}")
    for link in channel.findall(f"{{{ATOM}}}link"):
        if not link.get("rel") or not _IRI.match(link.get("href", "")):
            errors.append(f"InvalidAtomLink: channel/atom:link {dict(link.attrib)}")
    guids: set[str] = set()
    for n, item in enumerate(channel.findall("item"), start=1):
        where = f"item[{n}]"
        for child in item:
            if not isinstance(child.tag, str):
                continue
            if etree.QName(child).namespace is None and child.tag not in _RSS_ITEM:
                errors.append(f"UndefinedElement: {where}/{child.tag}")
        if not item.findall("title") and not item.findall("description"):
            errors.append(f"ItemMustContainTitleOrDescription: {where}")
        for name in ("title", "link", "description", "guid", "pubDate", "author"):
            if len(item.findall(name)) > 1:
                errors.append(f"DuplicateElement: {where}/{name}")
        for el in item.findall("link"):
            if not _URL.match(_text(el)):
                errors.append(f"InvalidURLAttribute: {where}/link {_text(el)!r}")
        for el in item.findall("guid"):
            permalink = el.get("isPermaLink", "true")
            if permalink not in ("true", "false"):
                errors.append(f"InvalidBooleanAttribute: {where}/guid isPermaLink={permalink!r}")
            if permalink == "true" and not _URL.match(_text(el)):
                errors.append(f"InvalidHttpGUID: {where}/guid {_text(el)!r}")
            if _text(el) in guids:
                errors.append(f"DuplicateItem: {where}/guid {_text(el)!r}")
            guids.add(_text(el))
        for el in item.findall("pubDate"):
            _date822(el, where, errors)
        for el in item.findall("author"):
            if not _EMAIL_FIRST.match(_text(el)):
                errors.append(f"InvalidContact: {where}/author {_text(el)!r}")
        for el in item.findall("category"):
            if not _text(el):
                errors.append(f"MissingElement: {where}/category is empty")
        creators = [_text(el) for el in item.findall(f"{{{DC}}}creator")]
        if not item.findall("author") and not any(creators):
            errors.append(f"MissingAuthor: {where} has neither author nor dc:creator")
    return errors
