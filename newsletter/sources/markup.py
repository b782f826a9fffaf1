"""Feed HTML made safe and readable: ``sanitize_html`` (an allow-list, through nh3),
``html_to_text`` (paragraphs and list items kept apart, through inscriptis),
``text_to_html``, and ``markdown_to_html`` for entry content written in Markdown
(``looks_like_markdown`` tells it from plain text).

Pure string functions: none raises on hostile input."""

from __future__ import annotations

import html as html_lib
import re
import threading
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import nh3

if TYPE_CHECKING:
    from inscriptis.model.config import ParserConfig

from newsletter.sources.links import ABSOLUTE_URL, PLAIN_ABSOLUTE_URL, strip_tracking

ALLOWED_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "dd",
        "del",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "small",
        "sub",
        "sup",
        "strong",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
    }
)
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
    "blockquote": {"cite"},
    "q": {"cite"},
}
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
_CONTROL_IN_URL = re.compile(r"[\x00-\x20\x7f]+")


def _keep_url(tag: str, attr: str, value: str) -> str | None:
    """nh3's attribute filter: URLs resolved against the base of the fragment being
    sanitized (``_current.base``), unsafe schemes dropped."""
    if attr not in _URL_ATTRIBUTES:
        return value
    if attr == "href" and "?" in value:
        value = strip_tracking(value)  # readers follow links, and the click is theirs
    if PLAIN_ABSOLUTE_URL.fullmatch(value):
        return value  # the common case: nothing to resolve, squeeze or reject
    base: str | None = getattr(_current, "base", None)
    # Browsers ignore whitespace and control characters inside a scheme
    # ("java\tscript:"), so judge the scheme on the squeezed value.
    squeezed = _CONTROL_IN_URL.sub("", value)
    try:
        value = value.strip()
        resolved = urljoin(base, value) if base and not ABSOLUTE_URL.match(value) else value
        scheme = urlsplit(_CONTROL_IN_URL.sub("", resolved)).scheme.lower()
    except ValueError:
        return None
    if scheme and scheme not in ALLOWED_URL_SCHEMES:
        return None
    if not scheme and ":" in squeezed.split("/", 1)[0]:
        return None
    return resolved


# The sanitizer is built once (building it per call costs as much as a short fragment's
# cleaning); the base URL its filter resolves against is per call and per thread.
_current = threading.local()
_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    attributes=ALLOWED_ATTRIBUTES,
    attribute_filter=_keep_url,
    url_schemes=set(ALLOWED_URL_SCHEMES),
    link_rel="noopener noreferrer",
    strip_comments=True,
)


# What the sanitizer changes in text outside tags: markup and entities are parsed, ">"
# escaped, CR LF made LF, NUL dropped.
_MARKUP_CHARS = re.compile(r"[<>&\r\x00]")


def sanitize_html(html: str, base: str | None = None) -> str:
    """``html`` reduced to a safe allowlist of tags and attributes (no scripts, styles,
    event handlers or ``javascript:`` URLs); links get ``rel="noopener noreferrer"`` and,
    when ``base`` is given, relative URLs become absolute."""
    if not html or not html.strip():
        return ""
    if html.isascii() and not _MARKUP_CHARS.search(html):
        # Plain ASCII text: nothing for the sanitizer to drop, escape or normalize.
        return html.strip()
    if len(html) > MAX_HTML:
        html = html[:MAX_HTML]
    if html.count("<") > MAX_DEPTH:
        html = _limit_depth(html)
    _current.base = base
    try:
        return _CLEANER.clean(html).strip()
    finally:
        _current.base = None


MAX_HTML = 1_000_000
"""Characters of an entry's HTML given to the sanitizer; the rest is dropped. html5ever
slows down more than linearly on some long text runs (10 MB of URLs with ``&`` took 14 s,
1 MB 0.14 s), and no digest shows more than the start of an entry."""

MAX_DEPTH = 200
"""Elements open at once that the sanitizer is given: html5ever checks the open elements
on every tag, so 1 MB of ``<div>`` cost it minutes (issue 11, finding 2). Opening tags
past this depth (and as many closing tags) are dropped; their text stays."""

_TAG_NAME = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)[^<>]*?(/?)>")
# Elements that never hold others, or that the parser closes by itself when a sibling
# starts ("<p>a<p>b"): they do not deepen the tree.
_FLAT = frozenset(
    {
        "br", "img", "hr", "input", "meta", "link", "wbr", "source", "col", "area", "base",
        "embed", "param", "track", "p", "li", "dt", "dd", "tr", "td", "th", "option",
    }
)  # fmt: skip


def _limit_depth(html: str) -> str:
    """``html`` with opening tags past :data:`MAX_DEPTH` open elements dropped, and as
    many closing tags after them (one pass, linear)."""
    depth = 0
    skipped = 0
    out: list[str] = []
    last = 0
    for match in _TAG_NAME.finditer(html):
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if self_closing or name in _FLAT:
            continue
        drop = False
        if closing:
            if skipped:
                skipped -= 1
                drop = True
            elif depth:
                depth -= 1
        elif depth >= MAX_DEPTH:
            skipped += 1
            drop = True
        else:
            depth += 1
        if drop:
            out.append(html[last : match.start()])
            last = match.end()
    if not out:
        return html
    out.append(html[last:])
    return "".join(out)


# Linear: a tag never spans a "<" (so an unclosed "<a href='" stops at the next tag
# instead of scanning to the end, once per "<"), and an unclosed block or comment ends
# the text, as in a browser.
_DROP_BLOCKS = re.compile(
    r"<(script|style|head|template|noscript)\b[^<>]*>.*?(?:</\1\s*>|\Z)",
    re.IGNORECASE | re.DOTALL,
)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_ANY_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)[^<>]*>|<![^<>]*>|<\?[^<>]*>")
# Elements whose text needs a layout engine: list items with their bullets or numbers,
# table rows and cells, preformatted text.
_LAYOUT_TAG = re.compile(r"<(?:ul|ol|li|dl|dt|dd|table|tr|td|th|pre|textarea|listing|q)\b", re.I)
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")
_PARAGRAPH_TAGS = frozenset(
    {
        "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "pre", "blockquote",
        "table", "thead", "tbody", "tfoot", "section", "article", "header", "footer", "aside",
        "nav", "figure", "hr", "address", "main", "details", "summary",
    }
)  # fmt: skip
# Only opening tags break lines, so that "</li><li>" makes one line break, not two.
_LINE_TAGS = frozenset(["br", "tr", "li", "dt", "dd", "figcaption", "caption"])
_CELL_TAGS = frozenset(("td", "th"))


# What each tag becomes, by lowercase name with "/" for closing tags (absent: nothing):
# the same as _tag_break, looked up without a Python call and a match object per tag.
_TAG_BREAKS: dict[str, str] = {
    **{name: "\n\n" for name in _PARAGRAPH_TAGS},
    **{"/" + name: "\n\n" for name in _PARAGRAPH_TAGS},
    **{name: "\n" for name in _LINE_TAGS},
    "/br": "\n",
    **{"/" + name: " " for name in _CELL_TAGS},
}


def _tags_to_breaks(s: str) -> str:
    # split() cuts the text at exactly the tags sub() would replace, leaving [text,
    # slash, name, text, slash, name, ..., text]; slash and name are None for <!...>
    # and <?...>.
    parts: list[str | None] = _ANY_TAG.split(s)
    parts[2::3] = [
        _TAG_BREAKS.get((slash or "") + name.lower(), "") if name else ""
        for slash, name in zip(parts[1::3], parts[2::3], strict=True)
    ]
    parts[1::3] = [""] * (len(parts) // 3)
    return "".join(parts)  # type: ignore[arg-type]  # every None was replaced


_SPACES = re.compile(r"[^\S\n]+")
BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
# inscriptis indents list items and marks them "* ", "+ ", "o ", "- " by depth, or "1. ".
_LIST_BULLET = re.compile(r"^[ \t]+[*+o-] (?=\S)", re.MULTILINE)
_LIST_BULLET_CHAR = "\u2022 "


def _inscriptis_config() -> ParserConfig:
    # Built on first use: importing inscriptis costs about 10 ms over lxml, and a
    # worker that only meets plain-text entries never needs it.
    global _CONFIG
    if _CONFIG is None:
        from inscriptis.css_profiles import CSS_PROFILES
        from inscriptis.model.config import ParserConfig

        # "strict": only what HTML itself says is a block; "relaxed" would pad inline
        # elements with spaces ("<b>world</b>." would become "world .").
        _CONFIG = ParserConfig(css=CSS_PROFILES["strict"])
    return _CONFIG


_CONFIG: ParserConfig | None = None


def _layout_text(html: str) -> str:
    """The text of HTML with lists, tables or preformatted text, laid out by inscriptis."""
    from inscriptis import get_text

    if len(html) > MAX_HTML:
        html = html[:MAX_HTML]
    if html.count("<") > MAX_DEPTH:
        html = _limit_depth(html)
    try:
        s = get_text(html, _inscriptis_config())
    except (ValueError, RecursionError):
        # lxml refuses some byte soup (a lone NUL, an encoding declaration in a str):
        # the text is then laid out as if it had only paragraphs.
        return _flow_text(html)
    return _LIST_BULLET.sub(_LIST_BULLET_CHAR, s) if " " in s else s


def _flow_text(html: str) -> str:
    """The text of HTML made of paragraphs, headings, quotes, line breaks and inline
    elements only: what inscriptis gives for it (a test compares the two on every fixture
    entry and on generated HTML), several times faster, since nothing needs laying out.
    Whitespace in the source is a space, a block a paragraph break, ``<br>`` a line."""
    s = _COMMENT.sub("", html) if "<!" in html else html
    s = _DROP_BLOCKS.sub("", s)
    s = _HTML_SPACE.sub(" ", s)
    s = _tags_to_breaks(s)
    return html_lib.unescape(s) if "&" in s else s


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace
    collapsed; block elements become paragraph breaks (blank lines), ``<br>`` a line
    break, and each list item its own line marked with a bullet ("\u2022 ") or its
    number, so that a list never runs together into one sentence.

    The layout is inscriptis's, a kept HTML-to-text converter built for exactly this
    (it renders lists, tables and ``<pre>`` as a browser's text would read): html2text,
    the other candidate, writes Markdown (escaped punctuation, ``[text](url)`` links),
    which is not the plain text summaries and grouping need. inscriptis walks the text in
    Python, about four times slower than ingest can afford on every entry, so HTML without
    a list, table or ``<pre>`` (most entries) takes ``_flow_text``, which gives the same
    text; text without a tag skips both.
    """
    if not html:
        return ""
    s = html
    if "<" in s and _LAYOUT_TAG.search(s):
        s = _layout_text(s)
    elif "<" in s:
        s = _flow_text(s)
    elif "&" in s:
        s = html_lib.unescape(s)
    return normalize_text(s)


def normalize_text(s: str) -> str:
    """Text as ``html_to_text`` returns it: control characters dropped, whitespace runs
    one space, line edges trimmed, at most one blank line in a row."""
    if not (s.isascii() and "\t" not in s and "\r" not in s and s.replace("\n", "").isprintable()):
        # (Printable ASCII and newlines, most text, has no character to remove.)
        s = BAD_CHARS.sub("", s)
    s = s.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    # Whitespace runs become one space (inscriptis pads table cells to align them).
    if not s.isascii() or "\t" in s or "  " in s:
        s = _SPACES.sub(" ", s)
    # Then lines lose their edge spaces (once collapsed, at most one each side) and the
    # lines that were blank, now empty, make one paragraph break.
    if " \n" in s or "\n " in s:
        s = "\n".join([line.strip(" ") for line in s.split("\n")])
    # Runs of three or more newlines become two; str.replace is several times faster
    # than the equivalent regex (each pass shortens every run, down to two).
    while "\n\n\n" in s:
        s = s.replace("\n\n\n", "\n\n")
    return s.strip()


def text_to_html(text: str) -> str:
    """Plain text as HTML paragraphs (blank lines split paragraphs, line breaks kept)."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r", "")) if p.strip()]
    return "".join(
        "<p>" + html_lib.escape(p, quote=False).replace("\n", "<br>") + "</p>" for p in paragraphs
    )


# What only Markdown writes: a heading ("## Fixes"), a fenced code block, a link or image
# ("[text](http...)"), strong emphasis ("**x**"), inline code, or a list of two items or
# more. A "#hashtag", one "- " line or a lone "*" in plain text is not enough.
_MARKDOWN_SIGNS = re.compile(
    r"^#{1,6}[ \t]+\S"
    r"|^(?:```|~~~)"
    r"|!?\[[^\[\]\n]{1,500}\]\((?:https?://|/|\.{0,2}/|#|mailto:)[^()\s]{0,2000}\)"
    r"|\*\*(?=\S)[^*\n]{1,500}(?<=\S)\*\*"
    r"|`[^`\n]{1,500}`"
    r"|^[ \t]{0,3}(?:[-*+]|\d{1,3}[.)])[ \t]+\S[^\n]*\n[ \t]{0,3}(?:[-*+]|\d{1,3}[.)])[ \t]+\S",
    re.MULTILINE,
)
MARKDOWN_EXTENSIONS = ("fenced_code", "tables", "sane_lists", "nl2br")
"""Python-Markdown's extensions for entry content: what release notes and JSON Feed
``content_text`` use (fences, tables), lists that do not merge, and GitHub's rule that a
line break in the text is a line break."""


_RAW_HTML_START = re.compile(r"<(?!https?://[^\s<>]{1,2000}>)")
MAX_MARKDOWN = 20_000
"""Characters of Markdown rendered at most (Python-Markdown is pure Python; release notes
and JSON Feed items are far shorter). Longer text is shown as plain text."""


def looks_like_markdown(text: str) -> bool:
    """Whether plain ``text`` is written in Markdown (see ``_MARKDOWN_SIGNS``), so that it
    should be rendered rather than shown with its asterisks and brackets, and whether
    Python-Markdown can render it in linear time (see ``_renders_quickly``)."""
    if not text or len(text) > MAX_MARKDOWN:
        return False
    return _MARKDOWN_SIGNS.search(text) is not None and _renders_quickly(text)


MAX_MARKDOWN_LINE = 5_000
# A line indented past 16 columns (lists nested four deep and more) or quoted four deep.
_DEEP_LINE = re.compile(r"[ \t]{17}|(?:[ \t]*>){4}")
MAX_BRACKETS_PER_LINE = 32


def _renders_quickly(text: str) -> bool:
    """Whether every line closes the brackets it opens, and the parentheses after "](",
    with few brackets, no very long line and no deep nesting.

    Python-Markdown looks for the end of each "[" and "](" by scanning forward, so an
    unclosed one costs the rest of the block, once per bracket: 8 KB of "[](<" took 11 s,
    100 KB of "[![*_`" ten minutes. Markdown that people write closes its links on the
    line that opens them; text that does not is shown as plain text instead.
    """
    for line in text.split("\n"):
        if _DEEP_LINE.match(line):
            return False  # nested past a few levels: Python-Markdown recurses per level
        if "[" not in line and "](" not in line:
            if len(line) > MAX_MARKDOWN_LINE:
                return False
            continue
        opened = line.count("[")
        if (
            len(line) > MAX_MARKDOWN_LINE
            or opened > MAX_BRACKETS_PER_LINE
            or opened != line.count("]")
            or line.count(")") < line.count("](")
        ):
            return False
    return True


def markdown_to_html(text: str) -> str:
    """``text`` rendered from Markdown to HTML with Python-Markdown. Raw HTML in it is
    shown as text; the result is still to be given to ``sanitize_html`` (a Markdown link
    can name any scheme). Text that Python-Markdown would take more than linear time on
    (see ``_renders_quickly``), or longer than :data:`MAX_MARKDOWN`, becomes plain
    paragraphs instead."""
    if len(text) > MAX_MARKDOWN or not _renders_quickly(text):
        return text_to_html(text)
    import markdown  # imported on first use: most feeds are HTML

    if "<" in text:
        # Text is text: a "<" is shown, not parsed as raw HTML (which Python-Markdown
        # does in quadratic time on unclosed tags: 100 KB of "<a href='" took minutes).
        # Autolinks ("<https://...>") are kept.
        text = _RAW_HTML_START.sub("&lt;", text)
    try:
        return markdown.markdown(text, extensions=list(MARKDOWN_EXTENSIONS), output_format="html")
    except RecursionError:  # nesting the guard did not foresee: show the text as text
        return text_to_html(text)
