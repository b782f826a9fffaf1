"""Issue 11, finding 9: a source that cannot be read is reported without quoting it."""

from __future__ import annotations

import pytest

from newsletter.errors import ParseError
from newsletter.sources.parse import parse_outcome, parse_source
from newsletter.sources.reasons import safe_reason

SECRET = b"SMTP_PASSWORD=hunter2-very-secret"

BODIES = [
    # /proc/self/environ: NUL-separated variables
    b"HOME=/root\x00" + SECRET + b"\x00NEWSLETTER_SECRET_KEY=k3y-k3y-k3y\x00",
    b"<html><body>" + SECRET + b"</body></html>",
    b"<?xml version='1.0'?>\n<" + SECRET + b" <<<",
    b'{"version": "https://jsonfeed.org/version/1.1", "items": ' + SECRET + b"}",
    b'[{"paper": ' + SECRET + b"}]",
    SECRET * 50,
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
@pytest.mark.parametrize("kind", ["auto", "feed", "hf-papers"])
def test_parse_errors_never_quote_the_body(body: bytes, kind: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_source(body, source="local", url="file:///proc/self/environ", kind=kind)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith("local: ")
    assert "hunter2" not in message
    assert "SMTP_PASSWORD" not in message
    assert "k3y" not in message
    parsed, reason = parse_outcome(body, "local", kind=kind)  # type: ignore[arg-type]
    assert parsed is None and reason is not None
    assert "hunter2" not in reason


def test_safe_reason_keeps_a_library_message_that_quotes_nothing() -> None:
    assert safe_reason(ValueError("Expecting value: line 1 column 1 (char 0)"), b"[x") == (
        "ValueError: Expecting value: line 1 column 1 (char 0)"
    )
    assert safe_reason(KeyError("hunter2-secret"), b"... hunter2-secret ...") == "KeyError"
    cut = safe_reason(ValueError("bad XML (first 200 chars: hunter2)"), b"")
    assert cut == "ValueError: bad XML"
