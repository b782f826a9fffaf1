"""Digest files: the outputs a digest's configuration names (Markdown, HTML, text, RSS,
Atom), written atomically, and the format a file name asks for."""

from __future__ import annotations

from pathlib import Path

from newsletter.config import DigestConfig
from newsletter.models import Digest
from newsletter.render.digest import FORMATS, Format, render_digest
from newsletter.render.templates import cached_environment

SUFFIXES: dict[str, Format] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
    ".rss": "rss",
    ".atom": "atom",
}


def configured_outputs(cfg: DigestConfig) -> dict[Format, Path]:
    """The output files a digest's config names."""
    out: dict[Format, Path] = {}
    for fmt in FORMATS:
        value = getattr(cfg.outputs, fmt)
        if value:
            out[fmt] = Path(value).expanduser()
    return out


def format_for(path: Path | None) -> Format | None:
    """The format a file name asks for (``.md``, ``.html``, ``.rss``...), if any."""
    if path is None:
        return None
    return SUFFIXES.get(path.suffix.lower())


def write_text(path: Path, text: str) -> None:
    """Write a file atomically: a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_outputs(
    digest: Digest,
    outputs: dict[Format, Path],
    *,
    template_dir: str | None = None,
) -> dict[Format, Path]:
    """Render the digest in each format and write it; returns what was written."""
    env = cached_environment(template_dir)
    written: dict[Format, Path] = {}
    for fmt, path in outputs.items():
        write_text(path, render_digest(digest, fmt, env=env))
        written[fmt] = path
    return written
