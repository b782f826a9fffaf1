"""The demo looks real (issue 10, point 11): the sample sources that `make demo` reads have
no made-up names ("Author 403"), no dates that disagree with the edition, and titles that
say what they are, not the newsletter's own name."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.models import Digest
from newsletter.services import digests, ingest
from newsletter.store.database import Store

ROOT = Path(__file__).resolve().parents[1]
DEMO_FEEDS = ROOT / "config" / "feeds"
MADE_UP_NAME = re.compile(r"\bAuthor \d+\b")


def demo_digest(tmp_path: Path, now: datetime) -> Digest:
    """The demo's digest as `make demo` builds it, fetched and built at ``now``, in a real
    SQLite database under ``tmp_path``."""
    text = (ROOT / "config" / "demo.toml").read_text(encoding="utf-8")
    text = text.replace('"config/', f'"{ROOT}/config/')
    text = text.replace("sqlite:///out/demo.sqlite", f"sqlite:///{tmp_path}/demo.sqlite")
    text += f'\n[fetch]\nlocal_root = "{DEMO_FEEDS}"\n'
    path = tmp_path / "demo.toml"
    path.write_text(text, encoding="utf-8")
    settings = load_config(path)
    cfg = settings.digest(None)
    sources = digests.digest_sources(settings, cfg)
    with Store(settings.resolved_database_url()) as store:
        report = ingest.ingest(sources, store, settings.fetch, now=now)
        assert not report.failures
        return digests.make_digest(store, settings, cfg, sources, now=now, max_items=500)


def test_no_made_up_names_in_the_sample_sources() -> None:
    files = sorted(DEMO_FEEDS.iterdir())
    assert len(files) >= 4
    for path in files:
        assert not MADE_UP_NAME.search(path.read_text(encoding="utf-8")), path.name


@pytest.mark.parametrize(
    "now",
    [datetime.now(UTC), datetime(2031, 5, 4, 7, tzinfo=UTC)],
    ids=["today", "years-later"],
)
def test_the_demo_edition_holds_papers_of_its_own_day(tmp_path: Path, now: datetime) -> None:
    """Whenever the demo runs, no entry is dated after the edition or long before it
    (the sample entries are dated when first fetched), and no author is made up."""
    digest = demo_digest(tmp_path, now)
    entries = [e for item in digest.items for e in item.entries]
    assert len(entries) > 100
    for entry in entries:
        assert entry.when is not None
        assert now - timedelta(days=2) <= entry.when <= now, (entry.title, entry.when)
        assert not MADE_UP_NAME.search(entry.author or "")
        assert not any(MADE_UP_NAME.search(a) for a in (entry.media.authors if entry.media else ()))
    # The real HF capture brings real paper cards: authors, organization, thumbnail, code.
    cards = [item.media for item in digest.items if item.media and item.media.image]
    assert len(cards) >= 20
    assert any(m.organization and m.authors and m.link("code") for m in cards)


def test_sources_are_titled_as_what_they_are(tmp_path: Path) -> None:
    settings = load_config(ROOT / "config" / "demo.toml")
    titles = {s.name: s.title for s in settings.sources}
    newsletter_names = {d.title.casefold() for d in settings.digests}
    assert all(t and t.casefold() not in newsletter_names for t in titles.values()), titles
    hf = next(s for s in settings.sources if s.kind == "hf-papers")
    assert hf.title == "Hugging Face Daily Papers"
