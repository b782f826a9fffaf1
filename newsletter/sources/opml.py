"""OPML subscription lists in and out (the format every feed reader imports and exports).

``read_opml`` turns an OPML file's bytes into ``Source`` values (nested folders are
flattened; names are made unique slugs); ``write_opml`` writes sources as OPML 2.0. Besides
the standard ``text``/``title``/``xmlUrl`` attributes, each outline we write carries
``name`` (and ``kind``/``weight`` when not the defaults), so a list survives a round trip.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from typing import get_args

from lxml import etree

from newsletter.errors import ConfigError
from newsletter.models import Source, SourceKind

__all__ = ["opml_warnings", "read_opml", "slugify", "write_opml"]

_SCHEME = re.compile(r"\s*([a-zA-Z][a-zA-Z0-9+.\-]{1,30}):")
_MAX_SLUG = 60
_NON_SLUG = re.compile(r"[^a-z0-9]+")
_KINDS: tuple[str, ...] = get_args(SourceKind)
# Characters XML 1.0 cannot hold at all, not even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: str) -> str:
    return _NOT_XML.sub("", value)


def slugify(text: str, *, fallback: str = "source") -> str:
    """``text`` as a lowercase ASCII slug (``"Hacker News!"`` -> ``"hacker-news"``)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NON_SLUG.sub("-", ascii_text.lower()).strip("-")[:_MAX_SLUG].strip("-")
    return slug or fallback


def _attr(element: etree._Element, name: str) -> str:
    """An attribute by name, case-insensitively (exports disagree on ``xmlUrl``/``xmlurl``)."""
    value = element.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in element.attrib.items() if str(k).lower() == lower), None)
    return str(value).strip() if value is not None else ""


def _host(url: str) -> str:
    match = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:www\.)?([^/:?#]+)", url)
    return match.group(1) if match else ""


def read_opml(data: bytes, *, path: str = "") -> list[Source]:
    """The feeds listed in an OPML file, in document order.

    Every ``outline`` with an ``xmlUrl`` becomes a ``Source`` (folders are flattened);
    its name is the outline's ``name`` attribute, else a slug of its title/text, else of
    its host, made unique with ``-2``, ``-3``... Raises ``ConfigError`` naming ``path``
    (and the line) when the file is not OPML.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ConfigError(
            f"not well-formed OPML: {exc.msg}", path=path or None, line=exc.lineno or None
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"not well-formed OPML: {exc}", path=path or None) from exc
    if root is None or etree.QName(root).localname.lower() != "opml":
        tag = etree.QName(root).localname if root is not None else "nothing"
        raise ConfigError(
            f"not an OPML file: the root element is <{tag}>, expected <opml>",
            path=path or None,
            example='<opml version="2.0"><body><outline text="..." xmlUrl="..."/></body></opml>',
        )
    sources: list[Source] = []
    taken: set[str] = set()
    for outline in root.iter("{*}outline"):
        url = _attr(outline, "xmlUrl")
        if not url:
            continue  # a folder, or a link that is not a feed
        line = outline.sourceline
        label = _attr(outline, "title") or _attr(outline, "text")
        base = slugify(_attr(outline, "name") or label or _host(url))
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        kind = _attr(outline, "kind") or "auto"
        if kind not in _KINDS:
            raise ConfigError(
                f"unknown source kind {kind!r} (expected one of {', '.join(_KINDS)})",
                path=path or None,
                line=line,
                setting=f"outline {label or url!r} kind",
                example='kind="feed"',
            )
        raw_weight = _attr(outline, "weight") or "1"
        try:
            weight = float(raw_weight)
        except ValueError:
            weight = math.nan
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(
                f"weight must be a non-negative number, not {raw_weight!r}",
                path=path or None,
                line=line,
                setting=f"outline {label or url!r} weight",
                example='weight="1.5"',
            )
        sources.append(
            Source(
                name=name,
                url=url,
                kind=kind,  # type: ignore[arg-type]  # checked against SourceKind above
                weight=weight,
                title=label if label and label != name else None,
            )
        )
    return sources


def opml_warnings(sources: Sequence[Source]) -> list[str]:
    """What a person importing ``sources`` should know: a list from elsewhere that names
    local files (``file://`` URLs or plain paths) or schemes we do not fetch. Local files
    are read only under ``fetch.local_root``, but an import should never add one silently."""
    warnings = []
    for source in sources:
        match = _SCHEME.match(source.url)
        scheme = match.group(1).lower() if match else ""
        if scheme in ("http", "https"):
            continue
        if scheme in ("", "file"):
            warnings.append(
                f"{source.name}: {source.url!r} is a local file, not a web feed; it is read"
                " only if it lies under fetch.local_root"
            )
        else:
            warnings.append(f"{source.name}: {source.url!r} is not an http(s) URL")
    return warnings


def write_opml(sources: Sequence[Source], *, title: str = "newsletter sources") -> bytes:
    """``sources`` as an OPML 2.0 document (UTF-8 bytes) that feed readers can import."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = _xml_text(title)
    body = etree.SubElement(root, "body")
    for source in sources:
        outline = etree.SubElement(body, "outline")
        outline.set("type", "rss")
        outline.set("text", _xml_text(source.label))
        if source.title:
            outline.set("title", _xml_text(source.title))
        outline.set("xmlUrl", _xml_text(source.url))
        outline.set("name", _xml_text(source.name))
        if source.kind != "auto":
            outline.set("kind", source.kind)
        if source.weight != 1.0:
            outline.set("weight", repr(source.weight))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
