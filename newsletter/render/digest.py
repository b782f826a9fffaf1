"""Digest -> Markdown, HTML, plain text (Jinja templates), or a feed (see ``feeds``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from newsletter.errors import TemplateError
from newsletter.models import Digest
from newsletter.render.feeds import render_feed
from newsletter.render.templates import cached_environment, render_template

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
