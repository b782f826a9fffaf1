"""What a parse worker runs, named from a module that imports nothing heavy.

The fetch stage hands bodies to worker processes by reference to ``parse_outcome``:
naming ``newsletter.sources.parse.parse_outcome`` directly would import the parsers
(fastfeedparser, lxml, nh3) into the process that only hands bodies over. Here they load
in the worker (its fork server preloads them), or on the first call in a thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from newsletter.models import ParsedSource, SourceKind


def parse_outcome(
    body: bytes, source: str, url: str, kind: SourceKind, content_type: str | None
) -> tuple[ParsedSource | None, str | None]:
    """``newsletter.sources.parse.parse_outcome``, imported on first call."""
    from newsletter.sources.parse import parse_outcome as parse

    return parse(body, source, url, kind, content_type)
