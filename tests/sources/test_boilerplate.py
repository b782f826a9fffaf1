"""Boilerplate learned per source (sources/boilerplate.py), on entries built here: what is
learned, what is never touched, and the HTML that follows the text."""

from __future__ import annotations

from newsletter.models import Entry
from newsletter.sources.boilerplate import strip_boilerplate
from newsletter.sources.markup import html_to_text, text_to_html

WORDS = ["apples", "bridges", "comets", "dunes", "engines", "forests", "glaciers", "harbors"]
"""Distinct content per entry (numbers would not do: they are masked when lines are
compared, so "Story 1" and "Story 2" are the same line)."""


def entry(n: int, text: str, *, source: str = "blog", title: str = "", html: str = "") -> Entry:
    """An entry whose HTML is ``html`` (else the text's paragraphs) and whose text is what
    the parser would make of that HTML."""
    content = html or text_to_html(text)
    return Entry(
        id=f"{source}-{n}",
        source=source,
        title=title or f"Post number {n}",
        content_html=content,
        text=html_to_text(content),
    )


def signed(n: int, count: int, source: str = "blog") -> list[Entry]:
    return [
        entry(i, f"A story about {WORDS[i]}.\n\nCheers, Ann", source=source)
        for i in range(n, n + count)
    ]


def test_a_signature_in_every_entry_is_learned() -> None:
    out = strip_boilerplate(signed(0, 3))
    assert [e.text for e in out] == [f"A story about {w}." for w in WORDS[:3]]
    assert [e.content_html for e in out] == [f"<p>A story about {w}.</p>" for w in WORDS[:3]]


def test_two_entries_are_too_few_to_learn_from() -> None:
    entries = signed(0, 2)
    assert strip_boilerplate(entries) == entries


def test_a_line_in_too_few_of_the_entries_stays() -> None:
    entries = signed(0, 3) + [entry(i, f"Plain {WORDS[i]}.") for i in range(3, 8)]
    # 3 of 8 entries end alike: under the 60% a template reaches.
    assert strip_boilerplate(entries) == entries


def test_sources_are_learned_apart() -> None:
    entries = signed(0, 1, "a") + signed(1, 1, "b") + signed(2, 1, "c")
    assert strip_boilerplate(entries) == entries


def test_a_recurring_line_inside_the_text_stays() -> None:
    entries = [entry(i, f"On {w}.\n\nSponsored\n\nMore {w}.") for i, w in enumerate(WORDS[:4])]
    assert strip_boilerplate(entries) == entries


def test_unchanged_entries_are_the_same_objects_in_the_same_order() -> None:
    entries = [entry(i, f"Text {i}.", source=s) for i, s in enumerate("abab")]
    out = strip_boilerplate(entries)
    assert all(a is b for a, b in zip(entries, out, strict=True))


def test_numbers_urls_and_the_title_do_not_make_lines_differ() -> None:
    entries = [
        entry(
            i,
            f"Of {WORDS[i]}.\n\nIssue #{40 + i}, {i + 1} December: “Post number {i}” online at "
            f"https://news.example/{i}",
        )
        for i in range(3)
    ]
    assert [e.text for e in strip_boilerplate(entries)] == [f"Of {w}." for w in WORDS[:3]]


def test_a_template_of_several_lines_goes_but_a_common_heading_stays() -> None:
    def release(i: int, heading: str) -> Entry:
        return entry(i, f"Release notes\n\nBuilt on 2026-11-{10 + i}.\n\n{heading}\n\n{WORDS[i]}")

    headings = ["Bug fixes"] * 4 + ["Features"]
    out = strip_boilerplate([release(i, h) for i, h in enumerate(headings)])
    assert [e.text for e in out] == [f"{h}\n\n{w}" for h, w in zip(headings, WORDS, strict=False)]


def test_known_phrases_go_even_from_a_single_entry() -> None:
    [out] = strip_boilerplate([entry(0, "The news.\n\nContinue reading...")])
    assert (out.text, out.content_html) == ("The news.", "<p>The news.</p>")
    [out] = strip_boilerplate(
        [entry(0, "Garlic.\n\nThe post Garlic appeared first on Garden Notes.")]
    )
    assert out.text == "Garlic."
    [out] = strip_boilerplate([entry(0, "Comments")])
    assert (out.text, out.content_html) == ("", "")


def test_a_trailing_phrase_is_cut_from_the_last_line() -> None:
    html = '<p>It rained all week. <a href="https://x.example/1">Read more »</a></p>'
    [out] = strip_boilerplate([entry(0, "", html=html)])
    assert out.text == "It rained all week."
    assert out.content_html == "<p>It rained all week. </p>"
    [out] = strip_boilerplate([entry(0, "Cut short here [...]")])
    assert out.text == "Cut short here…"


def test_read_more_inside_a_sentence_stays() -> None:
    entries = [entry(0, "Where you can read more")]
    assert strip_boilerplate(entries) == entries


def test_html_wrapped_in_a_container_loses_the_same_lines() -> None:
    def medium(i: int) -> Entry:
        html = (
            f'<div><p><a href="https://m.example/{i}"><img src="https://m.example/{i}.png"></a></p>'
            f"<p>Snippet on {WORDS[i]}.</p>"
            f"<p><a href='https://m.example/{i}'>Open in app</a></p></div>"
        )
        return entry(i, "", html=html)

    out = strip_boilerplate([medium(i) for i in range(3)])
    for i, e in enumerate(out):
        assert e.text == f"Snippet on {WORDS[i]}."
        assert "Open in app" not in e.content_html
        assert f'<img src="https://m.example/{i}.png">' in e.content_html
        assert f"<p>Snippet on {WORDS[i]}.</p>" in e.content_html


def test_leading_template_lines_leave_the_html_too() -> None:
    entries = [
        entry(
            i,
            "",
            html=f"<h2>Release Notes</h2>\n<p>Released on 2025-12-0{i + 1}.</p>\n"
            f"<ul><li>Fix {WORDS[i]}</li></ul>",
        )
        for i in range(3)
    ]
    out = strip_boilerplate(entries)
    assert [e.text for e in out] == [f"• Fix {w}" for w in WORDS[:3]]
    assert [e.content_html for e in out] == [f"<ul><li>Fix {w}</li></ul>" for w in WORDS[:3]]
