"""Digest -> Markdown, HTML, plain text (Jinja templates), or a feed (see ``feeds``)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from newsletter.errors import TemplateError
from newsletter.models import Digest
from newsletter.render.feeds import render_feed
from newsletter.render.templates import cached_environment, render_template
from newsletter.render.text import References, engagement_text, link_label

if TYPE_CHECKING:
    # Imported where they are used: together they take a tenth of a second, which every
    # command that only needs FORMATS or now_utc (``newsletter fetch``) would pay.
    import jinja2
    from markupsafe import Markup


Format = Literal["markdown", "html", "text", "rss", "atom"]


FORMATS: tuple[Format, ...] = ("markdown", "html", "text", "rss", "atom")


TEMPLATE_NAMES: dict[str, str] = {
    "markdown": "digest.md.j2",
    "html": "digest.html.j2",
    "text": "digest.txt.j2",
}


def digest_context(digest: Digest, **extra: Any) -> dict[str, Any]:
    """What every digest template sees: the digest, its editor's note as Markdown
    (``note``) and as sanitized HTML (``note_html``, safe to output unescaped), and
    ``links``, the numbered link references of a text rendering (``render.text``)."""
    return {
        "digest": digest,
        "sections": digest.sections,
        "sources": digest.sources,
        "generated": digest.generated_at,
        "source_label": lambda name: digest.sources[name].label if name in digest.sources else name,
        "note": digest.note,
        "note_html": note_html(digest.note),
        "links": References(),
        "engagement_text": engagement_text,
        "link_label": link_label,
        **extra,
    }


def note_html(note: str) -> Markup:
    """The editor's note (Markdown) as sanitized HTML, marked safe for templates."""
    from markupsafe import Markup

    return Markup(_note_html(note) if note.strip() else "")  # sanitized: safe as is


@functools.lru_cache(maxsize=16)
def _note_html(note: str) -> str:
    # Cached: an edition's note is the same in every rendering of it (one per distinct
    # subscriber preferences, and again while the HTML email is fitted to its size).
    # Imported here: Python-Markdown is loaded only for an edition that has a note.
    from newsletter.render.markdown_html import markdown_to_html

    return markdown_to_html(note)


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
