"""Why a source could not be read, said without quoting what it holds.

Parser libraries put the start of the body in their messages (fastfeedparser: "first 200
chars: ..."; a ``KeyError`` names a key of the document). A reason is shown by
``sources list`` and stored with the source, and a ``file://`` source may point at a file
of secrets, so no reason may echo the body (issue 11, finding 9).
"""

from __future__ import annotations

import re

MAX_REASON = 160
"""The longest part of a library's message kept in a reason."""

# Where a library starts quoting the document: "(first 200 chars: ...", "got: '...'".
_QUOTE_START = re.compile(
    r"\(?\s*(?:the\s+)?first\s+\d+\s+(?:chars|characters|bytes)\b|\bgot\s*:|\bcontent\s*:"
    r"|\bnear\s*:?\s*['\"]|(?<!\w)['\"]",
    re.IGNORECASE,
)
# Runs long enough that finding one in the body means the message quotes it.
_RUN = re.compile(r"[^\s:;,()\[\]<>]{6,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def safe_reason(exc: BaseException, data: bytes = b"") -> str:
    """``exc`` as a one-line reason that never quotes ``data``: its type, and its message
    up to where the library starts quoting, kept only when no longer run of it appears in
    ``data`` (a message built from the document says nothing a reader needs)."""
    kind = type(exc).__name__
    text = _CONTROL.sub(" ", str(exc))
    text = " ".join(_QUOTE_START.split(text, maxsplit=1)[0].split()).rstrip(" (:;,-")
    text = text[:MAX_REASON]
    if text and data:
        lowered = data.lower()
        for run in _RUN.findall(text):
            if run.lower().encode("utf-8", "replace") in lowered:
                text = ""
                break
    if not text:
        return kind
    return text if text.startswith(kind) else f"{kind}: {text}"
