"""Test data in one place: entries, subscribers, digests, configuration files, seeded stores.

Every factory has sensible defaults and takes keyword overrides, so a test spells out only
what it is about::

    make_entry(3, source="hn", hours_ago=2, points=120)
    make_subscriber("ada@example.org", timezone="Europe/Paris")
    cfg = write_config(tmp_path, smtp=local_smtp(port), digests=[digest_config(grace="2h")])
    with seeded_store(db_url(tmp_path), now=NOW, entries=make_papers(8, now=NOW)) as store: ...

The configuration factories build the TOML from plain dicts (``config_data``), so no test
writes TOML by hand unless the text itself is under test (line numbers in errors).
``write_config`` and the ``store`` fixture of ``tests/conftest.py`` use the same database
file, ``db_url(tmp_path)``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from newsletter.config import Settings, settings_from_dict
from newsletter.models import (
    Digest,
    Edition,
    Engagement,
    Entry,
    EntryMedia,
    Item,
    Section,
    Source,
    Subscriber,
)
from newsletter.store import outbox
from newsletter.store.database import Store
from newsletter.store.subscribers import save_subscriber

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
"""The feed files of ``tests/fixtures/feeds`` (see SOURCES.md and HANDMADE.md there)."""

NOW = datetime(2030, 6, 1, 5, 0, tzinfo=UTC)
"""The default ``now`` of the factories (a fixed instant: tests never read the clock
unless they mean to)."""

DOMAIN = "news.example.org"
FROM_ADDRESS = f"Daily Papers <daily@{DOMAIN}>"
BASE_URL = f"https://{DOMAIN}"

# -- entries ---------------------------------------------------------------------------------

_sequence = itertools.count(1)


def make_entry(
    n: int | str | None = None,
    *,
    id: str | None = None,
    source: str = "s",
    title: str | None = None,
    link: str | None = None,
    published: datetime | None = None,
    hours_ago: float | None = None,
    now: datetime = NOW,
    points: int | None = None,
    upvotes: int | None = None,
    comments: int | None = None,
    **fields: Any,
) -> Entry:
    """An ``Entry`` numbered ``n`` (``auto-1``, ``auto-2``... when omitted).

    Defaults: id ``str(n)``, source ``"s"``, title ``"Story n"``, link
    ``https://example.org/n``, no date. ``hours_ago`` sets ``published`` to that long
    before ``now``; ``points``/``upvotes``/``comments`` make the ``engagement``. Any other
    ``Entry`` field (author, text, tags, content_html, updated, comments_url, engagement,
    first_seen) is passed through.
    """
    if n is None:
        n = f"auto-{next(_sequence)}"  # never one of the numbered ids
    if published is None and hours_ago is not None:
        published = now - timedelta(hours=hours_ago)
    if points is not None or upvotes is not None or comments is not None:
        fields["engagement"] = Engagement(points=points, upvotes=upvotes, comments=comments)
    return Entry(
        id=str(n) if id is None else id,
        source=source,
        title=f"Story {n}" if title is None else title,
        link=f"https://example.org/{n}" if link is None else link,
        published=published,
        **fields,
    )


def make_stories(count: int = 3, *, now: datetime = NOW, source: str = "feed") -> list[Entry]:
    """``count`` short entries ``e0``, ``e1``... titled "Story i", published i+1 hours
    before ``now``."""
    return [
        make_entry(
            f"e{i}", source=source, title=f"Story {i}", hours_ago=i + 1, now=now, text="Some text."
        )
        for i in range(count)
    ]


WORDS = (
    *("transformer", "diffusion", "robotics", "protein", "quantum", "compiler", "database"),
    *("kernel", "graph", "vision", "speech", "agents", "retrieval", "sparse", "federated"),
    *("causal", "bayesian", "reinforcement", "symbolic", "tokenizer", "optimizer", "memory"),
    *("energy", "climate", "genome"),
)


def make_papers(count: int, *, now: datetime = NOW, source: str = "papers") -> list[Entry]:
    """``count`` paper-like entries of varied words (so grouping has topics to find), one
    an hour going back from ``now``, linked at ``https://example.org/p/<i>``."""
    w = len(WORDS)
    return [
        make_entry(
            i,
            source=source,
            title=f"{WORDS[i % w].title()} {WORDS[(i * 7 + 3) % w]} study {i}",
            link=f"https://example.org/p/{i}",
            hours_ago=i,
            now=now,
            text=" ".join(WORDS[(i * k) % w] for k in range(1, 40)),
        )
        for i in range(count)
    ]


def make_subscriber(who: int | str = 1, **fields: Any) -> Subscriber:
    """A ``Subscriber``: ``who`` is the address, or a number for ``reader<NNN>@example.org``;
    any other field (name, digests, interests, topics, timezone, status, format) by
    keyword."""
    email = who if isinstance(who, str) else f"reader{who:03d}@example.org"
    return Subscriber(email=email, **fields)


def sample_digest(
    n: int = 5, *, title: str = "Daily Papers", item_title: str | None = None
) -> Digest:
    """A hand-made digest of ``n`` items ("Paper number i") in two sections."""
    now = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    items = tuple(
        Item(
            entry=make_entry(
                i,
                source="arxiv",
                title=item_title if item_title is not None else f"Paper number {i}",
                link=f"https://example.org/papers/{i}",
                author="A. Author",
                published=now,
                text="Body text.",
            ),
            score=float(n - i),
            summary=f"A summary of paper {i}, which says something interesting about models.",
        )
        for i in range(n)
    )
    half = max(1, n // 2)
    sections = tuple(
        s
        for s in (
            Section("Language models", items[:half], key="lm"),
            Section("Vision", items[half:], key="vision"),
        )
        if s.items
    )
    return Digest(
        name="daily",
        title=title,
        generated_at=now,
        sections=sections,
        sources={"arxiv": Source("arxiv", "https://arxiv.org/rss/cs.AI", title="arXiv cs.AI")},
    )


def merged_paper_digest() -> Digest:
    """One paper found on two sources: Hugging Face (122 upvotes, 7 comments, card data:
    four authors, an organization, paper/PDF/code links) and Hacker News (240 points, 88
    comments) linking to the arXiv page; each source with its own discussion page."""
    hf = make_entry(
        "hf",
        source="hf",
        title="A paper about agents",
        link="https://huggingface.co/papers/2511.00001",
        upvotes=122,
        comments=7,
        comments_url="https://huggingface.co/papers/2511.00001#community",
        media=EntryMedia(
            authors=("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
            organization="Analytical Engines Ltd",
            links=(
                ("paper", "https://huggingface.co/papers/2511.00001"),
                ("pdf", "https://arxiv.org/pdf/2511.00001"),
                ("code", "https://github.com/ada/engine"),
            ),
        ),
    )
    hn = make_entry(
        "hn",
        source="hn",
        title="A paper about agents",
        link="https://arxiv.org/abs/2511.00001",
        points=240,
        comments=88,
        comments_url="https://news.ycombinator.com/item?id=1",
    )
    item = Item(entry=hf, duplicates=(hn,), summary="It works.")
    return Digest(
        name="daily",
        title="Daily Papers",
        generated_at=datetime(2026, 11, 28, 7, 0, tzinfo=UTC),
        sections=(Section("Agents", (item,)),),
        sources={
            "hf": Source("hf", "https://huggingface.co/papers", title="Hugging Face"),
            "hn": Source("hn", "https://news.ycombinator.com/rss", title="Hacker News"),
        },
    )


def paper_item(
    i: int, *, now: datetime = NOW, media: bool = True, score: float = 0.0, **fields: Any
) -> Item:
    """A paper story as the daily-papers source gives it: upvotes, a discussion page and
    (with ``media``) an ``EntryMedia`` with a 1200x648 thumbnail, five authors, an
    organization and paper / PDF / code / project links. Every third also has a plain
    arXiv duplicate, every fifth a Hacker News one with points and its own discussion."""
    words = WORDS[i % len(WORDS)], WORDS[(i * 7 + 3) % len(WORDS)]
    title = f"{words[0].title()} {words[1]} at scale: what {100 + i} experiments show (paper {i})"
    hf = f"https://huggingface.co/papers/2511.{10000 + i}"
    entry_media = (
        EntryMedia(
            image=f"https://cdn.example.org/thumbs/{i}.png",
            image_width=1200,
            image_height=648,
            authors=(
                "Ada Lovelace",
                "Alan Turing",
                "Grace Hopper",
                "Edsger Dijkstra",
                "Barbara Liskov",
            ),
            organization="Analytical Engines Lab",
            links=(
                ("paper", hf),
                ("pdf", f"https://arxiv.org/pdf/2511.{10000 + i}"),
                ("code", f"https://github.com/example/paper-{i}"),
                ("project", f"https://example.org/projects/{i}"),
                ("discussion", f"{hf}#community"),
            ),
        )
        if media
        else None
    )
    entry = make_entry(
        f"hf-{i}",
        source="papers",
        title=title,
        link=hf,
        hours_ago=i % 20,
        now=now,
        upvotes=300 - i,
        comments=i % 9,
        media=entry_media,
        **fields,
    )
    duplicates = []
    if i % 3 == 0:
        duplicates.append(
            make_entry(
                f"ax-{i}",
                source="arxiv",
                title=title,
                link=f"https://arxiv.org/abs/2511.{10000 + i}",
                now=now,
            )
        )
    if i % 5 == 0:
        duplicates.append(
            make_entry(
                f"hn-{i}",
                source="hn",
                title=title,
                link=f"https://blog.example.org/{i}",
                points=40 + i,
                comments=12 + i,
                comments_url=f"https://news.ycombinator.com/item?id={9000 + i}",
                now=now,
            )
        )
    summary = (
        f"We introduce a {words[0]} method for {words[1]} that cuts training cost by {i % 7 + 2}x "
        "and matches the strongest baselines on every benchmark we tried, from small models "
        "to the largest open ones."
    )
    return Item(
        entry=entry, duplicates=tuple(duplicates), score=score or 100.0 - i, summary=summary
    )


PAPER_SOURCES = {
    "papers": Source("papers", "https://huggingface.co/api/daily_papers", title="Daily Papers"),
    "arxiv": Source("arxiv", "https://rss.arxiv.org/rss/cs.LG", title="arXiv cs.LG"),
    "hn": Source("hn", "https://news.ycombinator.com/rss", title="Hacker News"),
}


def paper_digest(n: int = 60, *, sections: int = 6, media: bool = True) -> Digest:
    """A demo-size digest of ``n`` paper stories (``paper_item``) dealt into ``sections``
    sections the way grouping would, each section in score order."""
    now = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    items = [paper_item(i, now=now, media=media) for i in range(n)]
    names = ("Language Models", "Vision", "Agents", "Robotics", "Systems", "Theory", "Audio")
    groups = [tuple(items[k::sections]) for k in range(sections)]
    return Digest(
        name="daily",
        title="Daily Papers",
        generated_at=now,
        sections=tuple(
            Section(names[k % len(names)], g, key=f"t{k}") for k, g in enumerate(groups) if g
        ),
        sources=PAPER_SOURCES,
    )


# -- configuration ---------------------------------------------------------------------------

DEFAULT: Any = object()
"""Marks a section left to its default in ``config_data``."""


def db_url(folder: Path, name: str = "db.sqlite") -> str:
    """The SQLite URL of ``folder/name``: by default the database of ``write_config`` and of
    the ``store`` fixture."""
    return f"sqlite:///{folder / name}"


def source_config(
    name: str = "papers", url: str | Path = "https://example.org/feed.xml", **fields: Any
) -> dict[str, Any]:
    """One ``[[sources]]`` table."""
    return {"name": name, "url": str(url), **fields}


def digest_config(
    name: str = "daily", *, title: str = "Daily Papers", **fields: Any
) -> dict[str, Any]:
    """One ``[[digests]]`` table (``topics=[{"name": ..., "keywords": [...]}]``,
    ``outputs={...}``, ``schedule``, ``timezone``... by keyword)."""
    return {"name": name, "title": title, **fields}


def local_smtp(port: int, **fields: Any) -> dict[str, Any]:
    """An ``[smtp]`` table for a test server on 127.0.0.1: no TLS, short timeouts."""
    return {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "timeout": 5,
        "backoff": 0.01,
        **fields,
    }


def config_data(
    tmp_path: Path,
    *,
    database_url: str | None = DEFAULT,
    sources: Sequence[Mapping[str, Any]] | None = DEFAULT,
    digests: Sequence[Mapping[str, Any]] | None = DEFAULT,
    mail: Mapping[str, Any] | None = DEFAULT,
    smtp: Mapping[str, Any] | None = None,
    web: Mapping[str, Any] | None = DEFAULT,
    llm: Mapping[str, Any] | None = None,
    fetch: Mapping[str, Any] | None = None,
    **other: Any,
) -> dict[str, Any]:
    """A configuration as the dict its TOML parses to.

    Defaults: the database ``db_url(tmp_path)``, one source ``papers``, one digest
    ``daily`` titled "Daily Papers", file delivery into ``tmp_path/"mail"`` from
    ``FROM_ADDRESS``, ``web.base_url`` ``BASE_URL``. ``sources``/``digests`` replace the
    defaults; ``mail``/``web`` are merged over theirs; ``None`` (or ``[]``) leaves a
    section out. With ``smtp`` given, ``mail.delivery`` defaults to ``"smtp"``.
    ``fetch.local_root`` defaults to ``tmp_path`` and ``FEEDS``.
    """
    data: dict[str, Any] = {}
    data["database_url"] = db_url(tmp_path) if database_url is DEFAULT else database_url
    data["sources"] = [source_config()] if sources is DEFAULT else sources
    data["digests"] = [digest_config()] if digests is DEFAULT else digests
    if mail is not None:
        base = {
            "delivery": "smtp" if smtp else "file",
            "mail_dir": str(tmp_path / "mail"),
            "from_address": FROM_ADDRESS,
            "domain": DOMAIN,
        }
        data["mail"] = base if mail is DEFAULT else {**base, **mail}
    data["smtp"] = smtp
    if web is not None:
        data["web"] = {"base_url": BASE_URL, **({} if web is DEFAULT else web)}
    data["llm"] = llm
    # Local sources are read only under fetch.local_root: the test's folder and the
    # fixture feeds, unless the test says otherwise.
    data["fetch"] = {"local_root": [str(tmp_path), str(FEEDS)], **(fetch or {})}
    data.update(other)
    return {k: v for k, v in data.items() if v is not None and v != []}


def write_config(tmp_path: Path, *, name: str = "config.toml", **sections: Any) -> Path:
    """Write ``config_data(tmp_path, **sections)`` as TOML to ``tmp_path/name``."""
    path = tmp_path / name
    path.write_text(toml_text(config_data(tmp_path, **sections)), encoding="utf-8")
    return path


def make_settings(tmp_path: Path, **sections: Any) -> Settings:
    """``Settings`` validated from ``config_data(tmp_path, **sections)``, without the
    environment."""
    return settings_from_dict(config_data(tmp_path, **sections), env={})


def toml_text(data: Mapping[str, Any]) -> str:
    """TOML for what configurations hold: strings, numbers, booleans, paths, arrays of
    those, tables and arrays of tables (``[[digests]]`` with ``[[digests.topics]]``)."""
    lines: list[str] = []
    _toml_table(lines, (), data)
    return "\n".join(lines) + "\n"


def _is_tables(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and bool(value)
        and all(isinstance(v, Mapping) for v in value)
    )


def _toml_table(lines: list[str], prefix: tuple[str, ...], table: Mapping[str, Any]) -> None:
    nested = {k: v for k, v in table.items() if isinstance(v, Mapping) or _is_tables(v)}
    for key, value in table.items():
        if key not in nested and value is not None:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in nested.items():
        dotted = ".".join(_toml_key(k) for k in (*prefix, key))
        for sub in [value] if isinstance(value, Mapping) else value:
            lines.append(f"[{dotted}]" if isinstance(value, Mapping) else f"[[{dotted}]]")
            _toml_table(lines, (*prefix, key), sub)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        # A JSON string is a TOML basic string (the same escapes).
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


# -- the store -------------------------------------------------------------------------------


def seed(
    store: Store,
    *,
    now: datetime = NOW,
    entries: Iterable[Entry] = (),
    subscribers: Iterable[Subscriber | str | int] = (),
) -> list[Subscriber]:
    """Add ``entries`` (first seen ``now``) and save ``subscribers`` (a ``Subscriber``, or
    what ``make_subscriber`` takes) to ``store``; returns the saved subscribers."""
    entries = list(entries)
    if entries:
        store.add_entries(entries, now=now)
    return [
        save_subscriber(store, s if isinstance(s, Subscriber) else make_subscriber(s), now=now)
        for s in subscribers
    ]


def seed_edition(
    store: Store,
    period: str,
    entries: Sequence[Entry],
    *,
    now: datetime = NOW,
    digest: str = "daily",
    title: str = "",
) -> Edition:
    """Add ``entries`` and record the edition ``digest``/``period`` made of them."""
    store.add_entries(entries, now=now)
    edition, _ = store.create_edition(
        digest, period, [(e.source, e.id) for e in entries], now=now, title=title
    )
    return edition


def seed_outbox(
    store: Store,
    subscribers: Iterable[Subscriber | str | int],
    *,
    now: datetime = NOW,
    digest: str = "daily",
    period: str | None = None,
) -> int:
    """An edition of ``digest`` for ``period`` (default: the day of ``now``) and one queued
    outbox row per subscriber (saved first, see ``seed``); the edition's id."""
    edition, _ = store.create_edition(digest, period or f"{now:%Y-%m-%d}", [], now=now)
    outbox.enqueue(store, edition.id, seed(store, now=now, subscribers=subscribers), now=now)
    return edition.id


def seeded_store(
    url: str,
    *,
    now: datetime = NOW,
    entries: Iterable[Entry] = (),
    subscribers: Iterable[Subscriber | str | int] = (),
) -> Store:
    """A real SQLite ``Store`` at ``url``, seeded (see ``seed``). The caller closes it: use it
    in a ``with`` block, or ``seeded_store(...).close()`` to leave the data for a command."""
    store = Store(url)
    try:
        seed(store, now=now, entries=entries, subscribers=subscribers)
    except BaseException:
        store.close()
        raise
    return store


TOPIC_KINDS = {
    "quantum": ("Quantum error correction", "qubits and quantum codes on noisy hardware"),
    "robots": ("Robotics grasping", "robotics policies for arms that pick things up"),
}
"""Two kinds of story a digest with a topic per kind keeps apart (the preference tests)."""


def topic_stories(now: datetime, tag: str, source: str = "feed") -> list[Entry]:
    """Two stories of each of ``TOPIC_KINDS``, first seen at ``now``; ``tag`` keeps the
    ids and titles of one edition apart from another's."""
    return [
        make_entry(
            f"{kind}-{tag}-{i}",
            source=source,
            title=f"{title} {tag} {i}",
            link=f"https://example.org/{kind}/{tag}{i}",
            hours_ago=i,
            now=now,
            text=text,
        )
        for kind, (title, text) in TOPIC_KINDS.items()
        for i in range(2)
    ]


# -- bounces ---------------------------------------------------------------------------------

BOUNCES = Path(__file__).resolve().parent / "fixtures" / "bounces"
"""DSN and ARF messages written from the RFCs' examples (see README.md there)."""
SECRET = "test-secret-key-of-32-characters!"
BOUNCE_ADDRESS = f"bounces@{DOMAIN}"


def send_for_bounces(
    store: Store,
    tmp_path: Path,
    subscribers: Sequence[str],
    *,
    now: datetime = NOW,
    period: str | None = None,
    bounces: Mapping[str, Any] | None = None,
    **sections: Any,
) -> list[Any]:
    """Send an edition of ``daily`` (one story first seen at ``now``) to ``subscribers``
    through a ``MemoryMailer``, signed with ``SECRET`` and VERP to ``BOUNCE_ADDRESS``
    (``bounces`` adds settings); the ``Outgoing`` messages, in the order sent."""
    settings = make_settings(
        tmp_path, bounces={"address": BOUNCE_ADDRESS, **(bounces or {})}, **sections
    )
    tag = period or f"{now:%Y-%m-%d}"
    new = [s for s in subscribers if not _subscribed(store, s)]
    seed(store, now=now, subscribers=new)
    return send_story(store, settings, now=now, title=f"Story {tag}", secret=SECRET, period=tag)


def send_story(
    store: Store,
    settings: Settings,
    *,
    now: datetime,
    title: str,
    secret: str = SECRET,
    period: str | None = None,
) -> list[Any]:
    """Add a story first seen at ``now`` and send the first digest's edition at ``now``
    (period ``period``, else the date) through a ``MemoryMailer``: the ``Outgoing``
    messages, in the order sent."""
    import asyncio

    from newsletter.deliver.mailers import MemoryMailer
    from newsletter.services.delivery import send_edition

    seed(store, now=now, entries=[make_entry(title, source="papers", now=now, hours_ago=0)])
    mailer = MemoryMailer()
    asyncio.run(
        send_edition(
            store,
            settings,
            settings.digests[0],
            mailer,
            now=now,
            clock=lambda: now,
            secret=secret,
            period=period or f"{now:%Y-%m-%d}",
        )
    )
    return list(mailer.messages)


def _subscribed(store: Store, email: str) -> bool:
    from newsletter.store.subscribers import get_subscriber

    return get_subscriber(store, email) is not None


def bounce_message(name: str, sent: Any, *, report_id: str = "", verp: str | None = None) -> bytes:
    """The fixture ``name`` (``dsn-hard``, ``dsn-soft``, ``dsn-delayed``, ``arf-abuse``)
    about the message ``sent`` (an ``Outgoing``): delivered to its envelope sender
    (``verp``: another address), quoting its headers or the whole message."""
    from string import Template

    head, _, _ = sent.data.partition(b"\r\n\r\n")
    text = (BOUNCES / f"{name}.eml").read_bytes().decode("ascii")
    filled = Template(text).substitute(
        verp=sent.sender if verp is None else verp,
        rcpt=sent.recipient,
        report_id=report_id or f"{name}.{sent.recipient}@mta.example.net",
        original=sent.data.decode("ascii"),
        original_headers=head.decode("ascii") + "\r\n",
    )
    return filled.encode("ascii")
