"""The Jinja environment and its filters.

Templates come from the user's ``template_dir`` first (any template there overrides the
bundled one of the same name), then from the bundled ``templates/`` folder, which ships in
the wheel as ``newsletter.templates``. HTML templates are autoescaped; Markdown and text
templates escape through the ``md`` filter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from newsletter.errors import TemplateError

if TYPE_CHECKING:
    # Imported where they are used: together they take a tenth of a second, which every
    # command that only needs FORMATS or now_utc (``newsletter fetch``) would pay.
    import jinja2


# Markdown markup, each escaped only where Markdown would read it as such (one pass per
# rule, in C: ``md_escape`` runs on every title and summary). Ordinary text such as
# ``0.0.1``, ``dependabot[bot]``, ``a | b`` or ``snake_case`` stays as written.
_MD_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # A backslash escapes punctuation (or a delimiter the template adds after the value).
    (re.compile(r"\\(?![^\W_]|\s)"), r"\\\\"),
    # Before an entity name, ``&`` would turn ``&copy;`` into a symbol.
    (re.compile(r"&(?=#[0-9xX]|\w{1,32};)"), "&amp;"),
    # Before a letter, ``/``, ``!`` or ``?``, ``<`` starts a tag or an autolink.
    (re.compile(r"<(?=[^\W\d_]|[/!?])"), "&lt;"),
    (re.compile(r"`"), r"\\`"),
    # Spaced on both sides (``5 * 3``), ``*`` can neither open nor close emphasis.
    (re.compile(r"(?<!\s)\*|\*(?!\s)"), r"\\*"),
    # Inside a word (``snake_case``), ``_`` is not emphasis.
    (re.compile(r"(?<![^\W_])_|_(?![^\W_])"), r"\\_"),
)
_MD_BRACKETS = str.maketrans({"[": "\\[", "]": "\\]"})


_MD_LINK_END = re.compile(r"\]\s?[(\[:]")


_MD_LABEL = re.compile(r"\[[^\[\]\n]{1,200}\]\(")


_MD_ORDERED = re.compile(r"^(\d+)([.)])(?=\s|$)")


_URL_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]")

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
"""The only schemes a rendered link may have (``mailto`` for addresses such as a
digest's contact link; entry links are http(s) only from ingestion on)."""


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
    """Text for Markdown inline context (titles, names, summaries), newlines flattened.

    Escapes only what Markdown (Python-Markdown, and CommonMark readers alike) would read
    as markup, so the Markdown stays readable as plain text: ``0.0.1``, ``[bot]``,
    ``a | b`` and ``snake_case`` are left alone, while ``*emphasis*``, ``[a](b)``,
    ``<tag>``, ``&copy;`` and a leading ``#``, ``>``, ``- `` or ``1. `` are escaped."""
    # Control characters never belong in text (Python-Markdown uses two as markers).
    text = " ".join(_URL_CONTROL.sub(" ", str(value)).split())
    if not text:
        return ""
    out = text
    for pattern, replacement in _MD_RULES:
        out = pattern.sub(replacement, out)
    if _md_brackets_need_escape(text):
        out = out.translate(_MD_BRACKETS)
    # At the start of a block: a heading, a quote, a list item or a rule.
    first, second = text[0], text[1:2]
    if first in "#>" or (first in "+-" and (not second or second.isspace() or not text.strip("-"))):
        return "\\" + out
    return _MD_ORDERED.sub(r"\1\\\2", out)


def _md_brackets_need_escape(text: str) -> bool:
    """Whether ``[`` and ``]`` could form a link, an image, a reference or a definition:
    unbalanced, or a ``]`` followed by ``(``, ``[`` or ``:``. Balanced brackets on their
    own (``dependabot[bot]``) read as text, even inside a link's text."""
    if "[" not in text and "]" not in text:
        return False
    if _MD_LINK_END.search(text):
        return True
    depth = 0
    for c in text:
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth < 0:
                return True
    return depth != 0


def safe_url(value: object) -> str:
    """The URL if it is http(s) or mailto, else ``""``: no ``javascript:``, ``data:``,
    ``file:`` or relative links, whatever their case, leading whitespace or control
    characters. Every template and ``render/feeds.py`` pass links through it (entry links
    were already checked at ingestion: this is the second line of defence)."""
    text = str(value or "").strip()
    if not text or _URL_CONTROL.search(text):
        return ""
    scheme, colon, _ = text.partition(":")
    if not colon or scheme.lower() not in SAFE_SCHEMES:
        return ""
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    if parts.scheme.lower() != "mailto" and not parts.netloc:
        return ""
    return text


MD_WIDTH = 76
"""Paragraphs of the Markdown output wrap at this many columns (it is also the text part
of a Markdown-format subscriber's email)."""


def md_wrap(value: object, width: int = MD_WIDTH) -> str:
    """``md_escape`` of ``value``, wrapped at ``width`` columns for a paragraph of its
    own (``md_fill``)."""
    return md_fill(md_escape(value), width)


def md_fill(markdown: object, width: int = MD_WIDTH) -> str:
    """One line of Markdown (escaped already) wrapped at ``width`` columns. A line break
    inside a Markdown paragraph is a space, so it reads the same once rendered; a line
    that wrapping starts is escaped where Markdown would begin a block there (a heading,
    quote, list item, rule or a heading's underline). Words are never broken: a longer
    one (a link's URL) overflows."""
    import textwrap

    text = str(markdown)
    if len(text) <= width:
        return text
    # A link's text stays on one line ("[3 comments](...)" is not split after "3"): its
    # spaces are held as NUL, which escaped text never holds, while the line is wrapped.
    text = _MD_LABEL.sub(lambda m: m.group().replace(" ", "\x00"), text)
    lines = textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)
    out = "\n".join(lines[:1] + [_md_line_start(line) for line in lines[1:]])
    return out.replace("\x00", " ")


def _md_line_start(line: str) -> str:
    """A continuation line escaped where Markdown would read its start as a block."""
    first, second = line[0], line[1:2]
    if set(line) == {"="}:
        return "&#61;" + line[1:]  # a setext underline; "\\=" is not an escape in Markdown
    if first in "#>" or (first in "+-*" and (not second or second == " " or set(line) == {first})):
        return "\\" + line
    return _MD_ORDERED.sub(r"\1\\\2", line)


def md_url(value: object) -> str:
    """A URL made safe inside Markdown ``(...)`` link syntax (``""`` unless ``safe_url``
    accepts it)."""
    return safe_url(value).replace(" ", "%20").replace("(", "%28").replace(")", "%29")


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


def period_date(period: str) -> str:
    """An edition's local date (``2026-12-01``) from its key (``2026-12-01T0010`` for a
    schedule that fires more than once a day); empty when the key is not a date."""
    try:
        return date.fromisoformat(period[:10]).isoformat()
    except ValueError:
        return ""


def edition_day(period: str, generated: datetime) -> datetime:
    """The time an edition's pages print as its date (``format_date`` shows UTC dates):
    ``generated``, unless the edition's own date (in its digest's or subscriber's zone,
    as its key says) is another day, then noon UTC of that day, so the body reads the
    date the subject does."""
    day = period_date(period)
    if not day or generated.astimezone(UTC).date().isoformat() == day:
        return generated
    return datetime.combine(date.fromisoformat(day), time(12), tzinfo=UTC)


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
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["md"] = md_escape
    env.filters["md_wrap"] = md_wrap
    env.filters["md_fill"] = md_fill
    env.filters["md_url"] = md_url
    env.filters["safe_url"] = safe_url
    env.filters["hostname"] = hostname
    env.filters["authors"] = short_authors
    env.filters["date"] = format_date
    from newsletter.render.text import wrap  # render.text imports safe_url from here

    env.filters["wrap"] = wrap
    return env


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept on disk: a one-off command compiles the email's templates
    once, not on every run (they cost 80 ms of a 0.5 s `send --dry-run`). The cache is
    keyed by each template's source, so an edited template is compiled again."""
    import jinja2

    from newsletter.paths import template_cache_dir

    folder = template_cache_dir()
    return jinja2.FileSystemBytecodeCache(str(folder)) if folder is not None else None


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
