"""Digest -> Markdown, HTML, plain text (Jinja templates) and RSS 2.0 / Atom (feedgen).

Templates come from the user's ``template_dir`` first (any template there overrides the
bundled one of the same name), then from the bundled ``templates/`` folder, which ships in
the wheel as ``newsletter.templates``. HTML templates are autoescaped; Markdown and text
templates escape through the ``md`` filter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from newsletter.errors import TemplateError
from newsletter.models import Digest, Item

if TYPE_CHECKING:
    # Imported where they are used: together they take a tenth of a second, which every
    # command that only needs FORMATS or now_utc (``newsletter fetch``) would pay.
    import jinja2

Format = Literal["markdown", "html", "text", "rss", "atom"]
FORMATS: tuple[Format, ...] = ("markdown", "html", "text", "rss", "atom")
TEMPLATE_NAMES: dict[str, str] = {
    "markdown": "digest.md.j2",
    "html": "digest.html.j2",
    "text": "digest.txt.j2",
}

_MD_INLINE = re.compile(r"([\\`*_\[\]<>|~])")
_MD_LINE_START = re.compile(r"^(\s*)([#>+\-=])")
_MD_ORDERED = re.compile(r"^(\s*\d+)([.)])")
# Characters XML 1.0 forbids; feed titles from the wild sometimes carry them.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def bundled_template_dir() -> Path:
    """The folder of the bundled templates: ``newsletter.templates`` in an installed
    wheel, the top-level ``templates/`` folder in a source checkout."""
    checkout = Path(__file__).resolve().parent.parent / "templates"
    if (checkout / "digest.md.j2").is_file():
        return checkout
    # Imported here: importlib.resources costs every command a hundredth of a second.
    from importlib import resources

    return Path(str(resources.files("newsletter.templates")))


def md_escape(value: object) -> str:
    """Escape text for Markdown inline context (titles, names) and flatten newlines."""
    text = " ".join(str(value).split())
    # Escape only what Markdown would read as markup, so the Markdown stays readable as
    # plain text (it is also the plain-text part of emails).
    text = _MD_INLINE.sub(r"\\\1", text)
    text = _MD_LINE_START.sub(r"\1\\\2", text)
    return _MD_ORDERED.sub(r"\1\\\2", text)


def md_url(value: object) -> str:
    """A URL made safe inside Markdown ``(...)`` link syntax."""
    return str(value).replace(" ", "%20").replace("(", "%28").replace(")", "%29")


MAX_AUTHORS = 3
"""Author lists longer than this are shortened to the first ones and "et al."."""


def short_authors(value: object, limit: int = MAX_AUTHORS) -> str:
    """``"A, B, C, D, E"`` -> ``"A, B, C et al."``: paper feeds list every author, which
    would bury the item's other details."""
    names = [n.strip() for n in str(value).split(",") if n.strip()]
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + " et al."


def hostname(url: object) -> str:
    """``https://www.example.org/x`` -> ``example.org``."""
    host = urlsplit(str(url)).hostname or ""
    return host.removeprefix("www.")


def format_date(value: datetime | None, fmt: str = "%Y-%m-%d") -> str:
    """A date for readers; empty for None."""
    return value.astimezone(UTC).strftime(fmt) if value else ""


def strip_xml_illegal(text: str) -> str:
    """Remove characters that XML 1.0 cannot carry."""
    return _XML_ILLEGAL.sub("", text)


def make_environment(template_dir: str | Path | None = None) -> jinja2.Environment:
    """The Jinja environment: user templates first, then the bundled ones."""
    import jinja2

    search: list[str] = []
    if template_dir:
        p = Path(template_dir).expanduser()
        if not p.is_dir():
            raise TemplateError(f"template_dir {p} is not a folder")
        search.append(str(p))
    search.append(str(bundled_template_dir()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "html.j2", "xml"), default_for_string=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    env.filters["md_url"] = md_url
    env.filters["hostname"] = hostname
    env.filters["authors"] = short_authors
    env.filters["date"] = format_date
    return env


@functools.lru_cache(maxsize=8)
def cached_environment(template_dir: str | None = None) -> jinja2.Environment:
    """``make_environment`` once per template folder and process: templates are compiled
    once, not on every render."""
    return make_environment(template_dir)


def render_template(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    """Render ``name`` with ``context``; template problems become ``TemplateError``."""
    import jinja2

    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template {exc.name!r} not found") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"template {exc.filename or exc.name}, line {exc.lineno}: {exc.message}"
        ) from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"template {name}: {exc.message}") from None


def digest_context(digest: Digest, **extra: Any) -> dict[str, Any]:
    """What every digest template sees."""
    return {
        "digest": digest,
        "sections": digest.sections,
        "sources": digest.sources,
        "generated": digest.generated_at,
        "source_label": lambda name: digest.sources[name].label if name in digest.sources else name,
        **extra,
    }


def render_digest(
    digest: Digest,
    fmt: Format,
    *,
    env: jinja2.Environment | None = None,
    template_dir: str | Path | None = None,
) -> str:
    """Render a digest in one of ``FORMATS``."""
    if fmt in ("rss", "atom"):
        return render_feed(digest, fmt).decode("utf-8")
    if fmt not in TEMPLATE_NAMES:
        raise TemplateError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if env is None:
        env = cached_environment(str(template_dir) if template_dir else None)
    return render_template(env, TEMPLATE_NAMES[fmt], digest_context(digest))


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
            f'<a href="{escape(d.link, quote=True)}">{escape(d.source)}</a>'
            for d in item.duplicates
            if d.link
        )
        if also:
            parts.append(f"<p><small>Also on: {also}</small></p>")
    return "\n".join(parts)


def render_feed(digest: Digest, fmt: Literal["rss", "atom"]) -> bytes:
    """The digest's items as an RSS 2.0 or Atom feed (valid: every item has an id/guid,
    RFC 822 / RFC 3339 dates, escaped content)."""
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    link = digest.link or "https://example.org/"
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
            guid = e.link or f"urn:newsletter:{e.source}:{e.id}"
            fe.id(strip_xml_illegal(guid))
            fe.guid(strip_xml_illegal(guid), permalink=bool(e.link) and guid == e.link)
            fe.title(strip_xml_illegal(e.title) or "(untitled)")
            if e.link:
                fe.link(href=strip_xml_illegal(e.link))
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
    return feed_bytes(fg, fmt, what=digest.name)


def feed_bytes(fg: Any, fmt: Literal["rss", "atom"], *, what: str) -> bytes:
    """A feedgen ``FeedGenerator`` serialized as RSS 2.0 or Atom; feedgen's complaints
    (a missing required field) become ``TemplateError`` naming the feed."""
    try:
        if fmt == "rss":
            return bytes(fg.rss_str(pretty=True))
        return bytes(fg.atom_str(pretty=True))
    except ValueError as exc:
        raise TemplateError(f"cannot build the {fmt} feed of {what}: {exc}") from None


def now_utc() -> datetime:
    """The current time, aware UTC (the CLI passes it into the pure core)."""
    return datetime.now(UTC)
