"""Markdown output: escapes only where Markdown would misread, checked by rendering the
Markdown through Python-Markdown and comparing the text a reader sees."""

from __future__ import annotations

import html
import re

import markdown
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.render.digest import render_digest
from newsletter.render.templates import md_escape
from tests.factories import sample_digest

CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]")

# Where the templates put escaped text, and where it shows in Python-Markdown's HTML.
CONTEXTS = {
    "paragraph": ("{}", r"<p>(.*)</p>"),
    "heading link": ("### [{}](https://x.org/)", r'<h3><a href="https://x.org/">(.*)</a></h3>'),
    "inline link": (
        "Also on: [{}](https://x.org/)",
        r'<p>Also on: <a href="https://x.org/">(.*)</a></p>',
    ),
    "emphasis": ("_{}_", r"<p><em>(.*)</em></p>"),
    "list item": ("- {}", r"<ul>\n<li>(.*)</li>\n</ul>"),
}


def shown(source: str, pattern: str) -> str:
    """The text a reader sees of ``source`` rendered by Python-Markdown, which must be the
    one element ``pattern`` expects, with no markup inside."""
    out = markdown.markdown(source)
    m = re.fullmatch(pattern, out, re.DOTALL)
    assert m is not None, out
    assert "<" not in m.group(1), out
    return html.unescape(m.group(1))


@pytest.mark.parametrize(
    "text",
    [
        "Release 0.0.1",
        "0.0.1 is out",
        "dependabot[bot] bumps lxml",
        "a | b | c",
        "snake_case_name and 5 * 3",
        "C:\\Users\\ada",
        "AT&T and a < b > c",
    ],
)
def test_ordinary_text_is_not_escaped(text: str) -> None:
    assert md_escape(text) == text
    assert shown(md_escape(text), CONTEXTS["paragraph"][1]) == text


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("*bold* and _em_", "\\*bold\\* and \\_em\\_"),
        ("[x](javascript:alert(1))", "\\[x\\](javascript:alert(1))"),
        ("<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"),
        ("# head", "\\# head"),
        ("> quote", "\\> quote"),
        ("- item", "\\- item"),
        ("---", "\\---"),
        ("1. first", "1\\. first"),
        ("2026. A year", "2026\\. A year"),
        ("`code`", "\\`code\\`"),
        ("&copy; 2026", "&amp;copy; 2026"),
        ("[ref]: https://x.org", "\\[ref\\]: https://x.org"),
        ("unbalanced ] bracket", "unbalanced \\] bracket"),
    ],
)
def test_markup_is_escaped(text: str, escaped: str) -> None:
    assert md_escape(text) == escaped
    assert shown(escaped, CONTEXTS["paragraph"][1]) == text


hostile = st.text(alphabet=" ab1.*_[]()<>&;#!`\\|-+=:~/", max_size=30)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=hostile | st.text(max_size=40), context=st.sampled_from(sorted(CONTEXTS)))
def test_python_markdown_shows_exactly_the_text(text: str, context: str) -> None:
    flat = " ".join(CONTROL.sub(" ", text).split())  # control characters are dropped
    if not flat:
        return
    source, pattern = CONTEXTS[context]
    assert shown(source.format(md_escape(text)), pattern) == flat


def test_markdown_digest_keeps_version_numbers_and_bot_names() -> None:
    from dataclasses import replace

    digest = sample_digest(2, item_title="dependabot[bot] bumps lxml to 0.0.1 | 5.3")
    digest = replace(
        digest,
        sections=tuple(
            replace(s, items=tuple(replace(i, summary="0.0.1 fixes a | b") for i in s.items))
            for s in digest.sections
        ),
    )
    out = render_digest(digest, "markdown")
    assert "[dependabot[bot] bumps lxml to 0.0.1 | 5.3](https://example.org/papers/0)" in out
    assert "\n0.0.1 fixes a | b\n" in out
    assert "\\" not in out
    page = markdown.markdown(out)
    assert (
        '<a href="https://example.org/papers/0">dependabot[bot] bumps lxml to 0.0.1 | 5.3</a>'
        in page
    )
