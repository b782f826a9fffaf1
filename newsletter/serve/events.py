"""The daemon's log: one structured line per event (``event=... key=value``) on the
``newsletter.serve.daemon`` logger, and the guard that logs a failed send and goes on."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from newsletter.errors import NewsletterError

log = logging.getLogger("newsletter.serve.daemon")


def log_event(event: str, level: int = logging.INFO, **fields: object) -> None:
    """One structured line: ``event=edition_sent digest=daily edition=2026-03-08 sent=3``."""
    parts = [f"event={event}"]
    for key, value in fields.items():
        text = str(value)
        if not text or any(c in text for c in ' "=\n'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
        parts.append(f"{key}={text}")
    log.log(level, " ".join(parts))


@contextlib.contextmanager
def logged_failure(digest: str, edition: str) -> Iterator[None]:
    """A send that fails (a refused login, a broken template...) is logged, and the
    daemon goes on: the next run tries again."""
    try:
        yield
    except NewsletterError as exc:
        log_event("send_failed", logging.ERROR, digest=digest, edition=edition, error=str(exc))


def log_skipped(digest: str, skipped: Sequence[Any], shown: int = 3) -> None:
    """The editions a catch-up plan skips (``plan.skipped``): the last ``shown`` by
    name, the older ones as one count."""
    for missed in skipped[-shown:]:
        log_event(
            "edition_skipped",
            logging.WARNING,
            digest=digest,
            edition=missed.period,
            reason=missed.reason,
        )
    if len(skipped) > shown:
        log_event(
            "edition_skipped",
            logging.WARNING,
            digest=digest,
            older=len(skipped) - shown,
            reason="coalesced",
        )
