"""The editor's note of an edition: a Markdown file read when the edition's digest is
built (the digest's ``note`` setting, or ``--note FILE.md`` on ``send`` and ``digest``).

``{period}`` in the path picks a file per edition (``notes/daily-{period}.md`` ->
``notes/daily-2026-12-01.md``): an edition without its file has no note, and the web
archive shows each edition with its own note. A path without it is the note of every
edition built while the file is there, and must exist: a missing or unreadable file is
a ``ConfigError`` naming it (exit 2), never a traceback.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

from newsletter.config import DigestConfig
from newsletter.errors import ConfigError
from newsletter.models import Digest

MAX_NOTE_BYTES = 50_000
"""A note is a few paragraphs; anything larger is a wrong file (the HTML email must
stay under 90 KB with every item in it)."""
EXAMPLE = 'note = "notes/daily.md"'


def note_path(cfg: DigestConfig, period: str) -> Path | None:
    """The note file of the edition ``period`` of digest ``cfg`` (None: no note set)."""
    if not cfg.note:
        return None
    return Path(cfg.note.replace("{period}", period)).expanduser()


def read_note(cfg: DigestConfig, period: str) -> str:
    """The note of the edition ``period`` as Markdown ('' when none is set, or when a
    per-edition file does not exist)."""
    path = note_path(cfg, period)
    if path is None or cfg.note is None:
        return ""
    per_edition = "{period}" in cfg.note
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if per_edition:
            return ""
        raise _error(cfg, path, "does not exist") from None
    except OSError as exc:
        raise _error(cfg, path, f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_NOTE_BYTES:
        raise _error(cfg, path, f"is {len(data):,} bytes: a note is at most {MAX_NOTE_BYTES:,}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(cfg, path, f"is not UTF-8 text ({exc.reason})") from None
    return text.replace("\r\n", "\n").strip()


def with_note(digest: Digest, cfg: DigestConfig, period: str) -> Digest:
    """``digest`` with the note of its edition ``period``."""
    note = read_note(cfg, period)
    return replace(digest, note=note) if note != digest.note else digest


def with_note_at(digest: Digest, cfg: DigestConfig, now: datetime) -> Digest:
    """``digest`` (a one-off, built at ``now``) with the note of the edition of ``now``."""
    # Imported here: editions imports the digests service, which calls this module.
    from newsletter.services.editions import period_for

    return with_note(digest, cfg, period_for(cfg, now))


def _error(cfg: DigestConfig, path: Path, problem: str) -> ConfigError:
    return ConfigError(
        f"{path} {problem}", setting=f"the note of digest {cfg.name!r}", example=EXAMPLE
    )


__all__ = ["MAX_NOTE_BYTES", "note_path", "read_note", "with_note", "with_note_at"]
