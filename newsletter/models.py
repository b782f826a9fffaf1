"""The values that flow through the pipeline: frozen dataclasses, no I/O.

``Source`` (what to read) -> ``Entry`` (one normalized item of a source) -> ``Item`` (one
story in a digest: an entry plus its merged duplicates, score and summary) -> ``Section``
-> ``Digest`` (what gets rendered) -> ``Edition`` (a digest as produced and stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

SourceKind = Literal["auto", "feed", "hf-papers"]
"""How a source's bytes are read: ``auto`` sniffs, ``feed`` is RSS/Atom/JSON Feed,
``hf-papers`` is the public daily-papers JSON list."""


@dataclass(frozen=True, slots=True)
class Source:
    """A configured source. ``name`` is the key used everywhere else."""

    name: str
    url: str
    kind: SourceKind = "auto"
    weight: float = 1.0
    title: str | None = None

    @property
    def label(self) -> str:
        """What a reader sees: the feed's title when known, else the configured name."""
        return self.title or self.name


@dataclass(frozen=True, slots=True)
class Engagement:
    """Signals a source may carry. ``None`` means the source does not have the signal,
    which is not the same as 0 (ranking treats sources without signals fairly)."""

    points: int | None = None
    upvotes: int | None = None
    comments: int | None = None

    @property
    def known(self) -> bool:
        """Whether the source gave any signal at all."""
        return any(v is not None for v in (self.points, self.upvotes, self.comments))

    def __add__(self, other: Engagement) -> Engagement:
        def add(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return Engagement(
            add(self.points, other.points),
            add(self.upvotes, other.upvotes),
            add(self.comments, other.comments),
        )


LinkKind = Literal["paper", "pdf", "code", "project", "discussion", "video"]
"""The kinds of extra link a rich entry may carry (a paper card shows them in this order)."""


@dataclass(frozen=True, slots=True)
class EntryMedia:
    """The extra data of a rich entry: a paper (Hugging Face daily papers, arXiv) or a
    video (YouTube ``media:group``). Every field is optional; ``None`` is "not given".

    ``authors`` are in the paper's order; ``links`` are (kind, absolute URL) pairs, at most
    one per kind; ``ai_summary`` is the source's own one-line summary (Hugging Face's
    ``ai_summary``), preferred over one built from the abstract.
    """

    image: str | None = None
    """A thumbnail URL (absolute, http(s))."""
    image_width: int | None = None
    image_height: int | None = None
    authors: tuple[str, ...] = ()
    organization: str | None = None
    links: tuple[tuple[LinkKind, str], ...] = ()
    ai_summary: str | None = None
    keywords: tuple[str, ...] = ()

    def link(self, kind: LinkKind) -> str | None:
        """The URL of one kind of link, if the source gave it."""
        return next((url for k, url in self.links if k == kind), None)

    @property
    def is_paper(self) -> bool:
        """Whether this describes a paper (it links to a paper page or a PDF)."""
        return any(kind in ("paper", "pdf") for kind, _ in self.links)

    def merged(self, other: EntryMedia | None) -> EntryMedia:
        """This media with every field it lacks taken from ``other`` (links: the kinds it
        lacks); ``self`` wins where both have a value."""
        if other is None:
            return self
        have = {kind for kind, _ in self.links}
        return EntryMedia(
            image=self.image or other.image,
            # The size belongs to the image it describes.
            image_width=self.image_width if self.image else other.image_width,
            image_height=self.image_height if self.image else other.image_height,
            authors=self.authors or other.authors,
            organization=self.organization or other.organization,
            links=(*self.links, *((k, u) for k, u in other.links if k not in have)),
            ai_summary=self.ai_summary or other.ai_summary,
            keywords=self.keywords or other.keywords,
        )

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict without the empty fields (what the store keeps)."""
        out: dict[str, object] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if value is None or value == ():
                continue
            out[name] = (
                [list(p) for p in value]
                if name == "links"
                else (list(value) if isinstance(value, tuple) else value)
            )
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> EntryMedia:
        """The inverse of ``to_json``; unknown keys are ignored (a newer writer's)."""

        def tup(key: str) -> tuple[str, ...]:
            value = data.get(key)
            return tuple(str(v) for v in value) if isinstance(value, list) else ()

        raw_links = data.get("links")
        links = tuple(
            (str(p[0]), str(p[1]))
            for p in (raw_links if isinstance(raw_links, list) else [])
            if isinstance(p, list) and len(p) == 2
        )

        def opt_int(key: str) -> int | None:
            value = data.get(key)
            return value if isinstance(value, int) else None

        def opt_str(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) and value else None

        return cls(
            image=opt_str("image"),
            image_width=opt_int("image_width"),
            image_height=opt_int("image_height"),
            authors=tup("authors"),
            organization=opt_str("organization"),
            links=links,  # type: ignore[arg-type]
            ai_summary=opt_str("ai_summary"),
            keywords=tup("keywords"),
        )


@dataclass(frozen=True, slots=True)
class Entry:
    """One normalized entry of one source.

    ``id`` is stable within the source (guid, else canonical link, else a content hash);
    ``link`` is canonical (tracking parameters removed); ``content_html`` is sanitized;
    ``text`` is its plain-text form. Times are timezone-aware UTC. ``first_seen`` is set by
    the store; ``when`` is what ranking and selection use.
    """

    id: str
    source: str
    title: str
    link: str = ""
    author: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    tags: tuple[str, ...] = ()
    content_html: str = ""
    text: str = ""
    engagement: Engagement = field(default_factory=Engagement)
    comments_url: str | None = None
    first_seen: datetime | None = None
    media: EntryMedia | None = None
    """What a rich source (a paper list, a video feed) says beyond a feed's fields."""

    @property
    def key(self) -> str:
        """Globally unique key: source name + entry id."""
        return f"{self.source}\x1f{self.id}"

    @property
    def when(self) -> datetime | None:
        """Published time, falling back to updated, then first-seen time."""
        return self.published or self.updated or self.first_seen

    def seen_at(self, when: datetime) -> Entry:
        """A copy with ``first_seen`` set."""
        if self.first_seen is when:
            return self
        # Built directly: dataclasses.replace costs several times more, and the store
        # calls this for every new entry of a fetch.
        return Entry(
            id=self.id,
            source=self.source,
            title=self.title,
            link=self.link,
            author=self.author,
            published=self.published,
            updated=self.updated,
            tags=self.tags,
            content_html=self.content_html,
            text=self.text,
            engagement=self.engagement,
            comments_url=self.comments_url,
            first_seen=when,
            media=self.media,
        )


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the store knows about a source between runs: one row of the ``sources``
    table (the fields are its columns, in order)."""

    name: str
    url: str
    fetch_url: str | None = None
    title: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    status: str = "new"
    error_count: int = 0
    last_error: str | None = None
    last_fetched: datetime | None = None
    last_ok: datetime | None = None
    retry_after: datetime | None = None


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """What a parsed source says about itself."""

    title: str | None = None
    link: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedSource:
    """The result of parsing one source's bytes."""

    info: FeedInfo
    entries: tuple[Entry, ...]
    parser: str = ""
    """Which parser tier produced it (``fastfeedparser``, ``feedparser``, ``jsonfeed``...)."""


@dataclass(frozen=True, slots=True)
class Item:
    """One story in a digest: the primary entry, its merged duplicates, its score.

    ``score_parts`` explains ``score``: the parts add up to it (``digest --explain``).
    """

    entry: Entry
    duplicates: tuple[Entry, ...] = ()
    score: float = 0.0
    score_parts: Mapping[str, float] = field(default_factory=dict)
    summary: str = ""
    interests: tuple[str, ...] = ()
    """The reader's interests the story matches (set by ranking): shown as "For you",
    they say why it sits above stories with more upvotes."""

    @property
    def entries(self) -> tuple[Entry, ...]:
        """The primary entry then every merged duplicate."""
        return (self.entry, *self.duplicates)

    @property
    def sources(self) -> tuple[str, ...]:
        """Every source the story appeared in, primary first, without repeats."""
        return tuple(dict.fromkeys(e.source for e in self.entries))

    @property
    def engagement(self) -> Engagement:
        """Engagement summed over the merged entries."""
        total = Engagement()
        for e in self.entries:
            total = total + e.engagement
        return total

    @property
    def signals(self) -> tuple[Signal, ...]:
        """What each source says about the story, one per source, primary first: its own
        engagement (summed over its entries) and its own discussion link, so that HF's
        upvotes stay with HF and HN's points and comments with HN."""
        by_source: dict[str, list[Entry]] = {}
        for e in self.entries:
            by_source.setdefault(e.source, []).append(e)
        out = []
        for source, entries in by_source.items():
            total = Engagement()
            for e in entries:
                total = total + e.engagement
            discussion = next(
                (
                    url
                    for e in entries
                    if (url := e.comments_url or (e.media.link("discussion") if e.media else None))
                ),
                None,
            )
            out.append(Signal(source, total, discussion, entries[0].link))
        return tuple(out)

    @property
    def media(self) -> EntryMedia | None:
        """The rich data of the story: the primary entry's media, each missing field
        filled from the duplicates' in order (None when no entry has any)."""
        merged: EntryMedia | None = None
        for e in self.entries:
            if e.media is not None:
                merged = e.media if merged is None else merged.merged(e.media)
        return merged


@dataclass(frozen=True, slots=True)
class Signal:
    """One source's signals about a story (``Item.signals``): what a reader sees next to
    that source's name. ``discussion`` is the source's comments page (Hacker News's item
    page, a paper's Hugging Face page), never the article; ``link`` is the entry's link."""

    source: str
    engagement: Engagement
    discussion: str | None = None
    link: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    """A topic section of a digest: a label, a one-line summary, ranked items."""

    title: str
    items: tuple[Item, ...]
    summary: str = ""
    key: str = ""
    """A stable slug for anchors and links."""


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything a template needs to render one digest."""

    name: str
    title: str
    generated_at: datetime
    sections: tuple[Section, ...]
    description: str = ""
    link: str = ""
    sources: Mapping[str, Source] = field(default_factory=dict)
    omitted: int = 0
    """Items left out by ``max_items`` (templates say so)."""
    dropped: int = 0
    """Entries left out before ranking by the candidate caps (``max_candidates``,
    ``max_candidates_per_source``): the oldest of a source or an edition too big to read."""
    author: str = ""
    """Who the feeds name as author where an entry names none (the digest's from name)."""
    feed_urls: Mapping[str, str] = field(default_factory=dict)
    """Each feed format's public URL (``rss``, ``atom``): the feed's ``rel="self"`` link."""
    note: str = ""
    """The editor's note of this edition, Markdown source ('' = none): set by the
    services from ``--note`` or the digest's ``note`` file."""

    @property
    def items(self) -> tuple[Item, ...]:
        """Every item, section by section."""
        return tuple(item for section in self.sections for item in section.items)

    @property
    def item_count(self) -> int:
        return sum(len(s.items) for s in self.sections)


@dataclass(frozen=True, slots=True)
class Edition:
    """A digest as produced for a period and stored (``period`` is the idempotency key)."""

    id: int
    digest: str
    period: str
    created_at: datetime
    entry_keys: tuple[str, ...] = ()
    title: str = ""


SubscriberStatus = Literal["pending", "active", "unsubscribed", "bounced"]
MailFormat = Literal["html", "markdown"]


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A person who receives digests."""

    email: str
    name: str = ""
    digests: tuple[str, ...] = ()
    interests: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    """Names of configured topics of the digests: only their items are sent (empty: all)."""
    timezone: str = "UTC"
    status: SubscriberStatus = "active"
    format: MailFormat = "html"
    id: int | None = None
    paused_until: datetime | None = None
    """No mail is sent to the subscriber before this time (None: not paused)."""
    local_hour: int | None = None
    """The hour (0-23, in ``timezone``) at which local-hour digests reach this subscriber
    (None: the digest's ``local_hour``)."""

    def paused_at(self, now: datetime) -> bool:
        """Whether the subscriber's pause still holds at ``now``."""
        return self.paused_until is not None and now < self.paused_until
