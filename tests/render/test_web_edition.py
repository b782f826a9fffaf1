"""The web edition: every story of the edition (the email's footer sends readers there
for the ones it had no room for), with the same paper cards and anchors as the email."""

from __future__ import annotations

import random
import re
import string
from html import unescape
from pathlib import Path

from newsletter.models import Edition, Entry
from newsletter.render.archive import archive_page, body_of
from newsletter.render.message import parse_message
from newsletter.render.templates import make_environment
from newsletter.services.editions import EditionPlan, archived_edition, composer_for
from newsletter.store.database import Store
from tests.factories import (
    NOW,
    digest_config,
    make_entry,
    make_settings,
    paper_digest,
    seed_edition,
    source_config,
)


def distinct_stories(n: int) -> list[Entry]:
    """``n`` stories of made-up words: nothing for dedupe to merge."""

    def word(r: random.Random) -> str:
        return "".join(r.choice(string.ascii_lowercase) for _ in range(r.randint(4, 9)))

    out = []
    for i in range(n):
        r = random.Random(i)
        out.append(
            make_entry(
                f"w{i}",
                source="papers",
                title=" ".join(word(r) for _ in range(6)).capitalize(),
                link=f"https://example.org/w/{i}",
                hours_ago=i % 30,
                now=NOW,
                text=" ".join(word(r) for _ in range(40)),
            )
        )
    return out


def test_web_edition_holds_every_story_the_email_left_out(tmp_path: Path, store: Store) -> None:
    settings = make_settings(
        tmp_path,
        sources=[source_config("papers")],
        digests=[digest_config(max_items=40)],
        mail={"highlights": 2, "screens": 3},
    )
    cfg = settings.digest("daily")
    papers = distinct_stories(90)
    edition = seed_edition(store, "2030-06-01", papers, now=NOW)
    web = archived_edition(store, settings, cfg, edition, env=make_environment())
    assert web.digest.item_count == 90 and web.digest.omitted == 0
    page = unescape(web.html)
    assert all(p.title in page for p in papers)
    # The email of the same edition shows a few, and says how many more the web has.
    plan = EditionPlan.stored(edition, store.edition_entries(edition.id))
    composer = composer_for(store, settings, cfg, plan, secret="k")
    message = composer.message(
        email="ada@example.org", name="Ada", key="1", interests=(), fmt="html", now=NOW
    )
    body = parse_message(message.data).get_body(("html",))
    assert body is not None
    email = unescape(body.get_content())
    shown = [p.title for p in papers if f">{p.title}</a>" in email]
    assert 0 < len(shown) < 40
    left = 90 - len(shown)
    assert f"{left} more stories did not fit in this email" in email
    assert "https://news.example.org/archive/daily/2030-06-01" in email


def test_web_edition_page_has_cards_contents_and_anchors() -> None:
    digest = paper_digest(20)
    edition = Edition(id=1, digest="daily", period="2026-11-28", created_at=digest.generated_at)
    page = archive_page(edition, digest, env=make_environment(), highlights=3).html
    assert unescape(page).count("Ada Lovelace, Alan Turing, Grace Hopper et al.") == 20
    targets = re.findall(r'<nav class="toc".*?</nav>', page, re.DOTALL)[0]
    anchors = re.findall(r'href="#([^"]+)"', targets)
    assert anchors[0] == "highlights" and len(anchors) == 1 + len(digest.sections)
    for anchor in anchors:
        assert page.count(f'id="{anchor}"') == 1
    imgs = re.findall(r"<img[^>]*>", page)
    assert len(imgs) == 20
    assert all('alt="Figure: ' in i and 'width="' in i and 'height="' in i for i in imgs)
    # Each signal beside its own source: HN's points link to HN's discussion.
    assert 'href="https://news.ycombinator.com/item?id=9000"' in page
    assert "Hacker\xa0News</a> <span" in page  # a short label is kept on one line
    for item in digest.items:
        assert f">{item.entry.title}</a>" in unescape(page)
    assert "<html" not in body_of(page) and "Highlights" in body_of(page)
