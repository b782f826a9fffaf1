"""Issue 11, finding 3: no renderer lets a ``javascript:`` or ``data:`` link through.

Ingestion already drops such links (``sources/links.canonical_link``); these digests are
built by hand so that every renderer is tested on its own (defence in depth).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from newsletter.models import Digest, Item, Section
from newsletter.render.digest import FORMATS, render_digest
from newsletter.render.templates import safe_url
from tests.factories import make_entry, sample_digest

HOSTILE = [
    "javascript:alert(1)",
    "  JaVaScRiPt:alert(1)",
    "\x01javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "//evil.example/x",
]


@pytest.mark.parametrize("url", HOSTILE, ids=repr)
def test_safe_url_refuses_other_schemes(url: str) -> None:
    assert safe_url(url) == ""


@pytest.mark.parametrize(
    "url", ["https://example.org/a", "http://example.org/", "mailto:editor@example.org"]
)
def test_safe_url_keeps_http_and_mailto(url: str) -> None:
    assert safe_url(url) == url


def _hostile_digest(url: str) -> Digest:
    base = sample_digest(2)
    entry = make_entry(
        "evil", source="arxiv", title="Click me", link=url, comments_url=url, text="Body."
    )
    dup = make_entry("evil-2", source="hn", title="Click me too", link=url)
    item = Item(entry=entry, duplicates=(dup,), summary="A summary.")
    sections = (*base.sections, Section("Hostile", (item,), key="hostile"))
    return replace(base, sections=sections, link=url)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("url", HOSTILE[:5], ids=repr)
def test_no_renderer_emits_a_hostile_link(fmt: str, url: str) -> None:
    out = render_digest(_hostile_digest(url), fmt)  # type: ignore[arg-type]
    text = out.decode() if isinstance(out, bytes) else out
    lowered = text.lower()
    assert "javascript:" not in lowered
    assert "data:text" not in lowered
    assert "vbscript" not in lowered
    assert "Click me" in text  # the item is still there, without its link
