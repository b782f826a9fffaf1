"""Managing subscribers: add, remove, list, import from CSV, export to CSV.

Addresses are validated and normalized with email-validator (no DNS lookups: a typo'd
domain is caught by the first bounce, not by a slow import). A subscriber with an empty
digest list receives every digest. ``read_csv`` is pure: it returns the good rows and a
problem per bad line, so an import reports each bad address with its line and imports
the rest.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.config import DigestConfig
from newsletter.errors import AddressError
from newsletter.models import MailFormat, Subscriber
from newsletter.store.database import Store
from newsletter.store.subscribers import (
    all_subscribers,
    get_subscriber,
    save_subscriber,
    set_status,
)

CSV_COLUMNS = (
    "email",
    "name",
    "digests",
    "interests",
    "topics",
    "timezone",
    "format",
    "status",
    "local_hour",
    "paused_until",
)


def normalize_address(text: str) -> str:
    """The normalized address (lower-cased, IDN domains as ASCII); ``AddressError`` when
    invalid. International local parts are refused: they need SMTPUTF8 everywhere.

    The local part is lower-cased too: strictly it is case-sensitive, but no mailbox
    provider treats it so, and ``Ada@`` and ``ada@`` must not become two subscribers."""
    # Imported here: `send` and the daemon import this module but validate no address.
    from email_validator import EmailNotValidError, validate_email

    value = text.strip()
    try:
        info = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise AddressError(value, str(exc)) from None
    return (info.ascii_email or info.normalized).lower()


def _split(value: str) -> tuple[str, ...]:
    """Digest names: separated by ";", "," or spaces (a name has none of them)."""
    parts = value.replace(";", ",").replace(" ", ",").split(",")
    return tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))


def _split_interests(value: str) -> tuple[str, ...]:
    # Only ";" (as ``to_csv`` writes them): an interest may be several words
    # ("reinforcement learning"), and splitting on spaces would make each word one.
    parts = (" ".join(p.split()) for p in value.split(";"))
    return tuple(dict.fromkeys(p for p in parts if p))


def _split_topics(value: str) -> tuple[str, ...]:
    # Only ";": a topic name is free text and may hold spaces or commas.
    parts = (" ".join(p.split()) for p in value.split(";"))
    return tuple(dict.fromkeys(p for p in parts if p))


def topic_names(digests: Iterable[DigestConfig]) -> tuple[str, ...]:
    """The configured topic names of these digests, in order, without repeats."""
    return tuple(dict.fromkeys(t.name for d in digests for t in d.topics))


def unknown_topics(
    topics: Iterable[str], digests: Sequence[DigestConfig], chosen: Sequence[str] = ()
) -> list[str]:
    """The ``topics`` that name no configured topic of the ``chosen`` digests (every
    digest when none are chosen, as for a subscriber with an empty digest list)."""
    mine = [d for d in digests if not chosen or d.name in chosen]
    valid = set(topic_names(mine))
    return [t for t in topics if t not in valid]


@dataclass(frozen=True, slots=True)
class CsvProblem:
    """A line of an import file that was left out, and why."""

    line: int
    value: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.value!r}: {self.reason}"


@dataclass
class CsvRows:
    """What ``read_csv`` found: subscribers with their line numbers, and problems."""

    subscribers: list[tuple[int, Subscriber]] = field(default_factory=list)
    problems: list[CsvProblem] = field(default_factory=list)


def read_csv(
    text: str,
    *,
    digests: Sequence[str] = (),
    configs: Sequence[DigestConfig] | None = None,
) -> CsvRows:
    """Subscribers from CSV text. With a header row, columns are named (``email`` is
    required; also ``name``, ``digests``, ``interests`` and ``topics`` (separated by
    ``;``), ``timezone``, ``format``, ``local_hour`` (0-23), ``paused_until`` (an ISO
    8601 time; a time without a zone is UTC)); without one, the first column is the address and
    the second the name. ``digests`` applies where a row names none. With ``configs``
    (the configured digests), a row whose topics are not topics of its digests is a
    problem."""
    out = CsvRows()
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header: list[str] | None = None
    seen: dict[str, int] = {}
    for raw_cells in reader:
        cells = [_from_cell(c) for c in raw_cells]
        line = reader.line_num
        if not cells or not any(c.strip() for c in cells):
            continue
        if header is None and line == 1 and any(c.strip().lower() == "email" for c in cells):
            header = [c.strip().lower() for c in cells]
            continue
        row = (
            dict(zip(header, cells, strict=False))
            if header
            else dict(zip(("email", "name"), cells, strict=False))
        )
        raw = (row.get("email") or "").strip()
        try:
            address = normalize_address(raw)
        except AddressError as exc:
            out.problems.append(CsvProblem(line, raw, exc.reason))
            continue
        if address in seen:
            out.problems.append(CsvProblem(line, raw, f"already on line {seen[address]}"))
            continue
        fmt = (row.get("format") or "html").strip().lower()
        if fmt not in ("html", "markdown"):
            out.problems.append(CsvProblem(line, raw, f"format {fmt!r} is not html or markdown"))
            continue
        tz = (row.get("timezone") or "UTC").strip() or "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            out.problems.append(CsvProblem(line, raw, f"{tz!r} is not a time zone name"))
            continue
        try:
            local_hour = _local_hour(row.get("local_hour") or "")
            paused_until = _paused_until(row.get("paused_until") or "")
        except ValueError as exc:
            out.problems.append(CsvProblem(line, raw, str(exc)))
            continue
        row_digests = _split(row.get("digests") or "") or tuple(digests)
        known = {d.name for d in configs} if configs is not None else None
        unknown = [d for d in row_digests if known is not None and d not in known]
        if unknown:
            valid = ", ".join(sorted(known or ())) or "none configured"
            out.problems.append(
                CsvProblem(line, raw, f"digest {unknown[0]!r} is not configured (known: {valid})")
            )
            continue
        topics = _split_topics(row.get("topics") or "")
        bad = unknown_topics(topics, configs, row_digests) if configs is not None else []
        if bad:
            mine = [d for d in configs or () if not row_digests or d.name in row_digests]
            valid = ", ".join(topic_names(mine)) or "none configured"
            out.problems.append(
                CsvProblem(line, raw, f"topic {bad[0]!r} is not configured (known: {valid})")
            )
            continue
        seen[address] = line
        mail_format: MailFormat = "markdown" if fmt == "markdown" else "html"
        out.subscribers.append(
            (
                line,
                Subscriber(
                    email=address,
                    name=" ".join((row.get("name") or "").split()),
                    digests=row_digests,
                    interests=_split_interests(row.get("interests") or ""),
                    topics=topics,
                    timezone=tz,
                    format=mail_format,
                    local_hour=local_hour,
                    paused_until=paused_until,
                ),
            )
        )
    return out


def _local_hour(text: str) -> int | None:
    """A CSV ``local_hour`` cell: empty, or a whole hour 0-23."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or not 0 <= int(text) <= 23:
        raise ValueError(f"local_hour {text!r} is not an hour from 0 to 23 (for example 7)")
    return int(text)


def _paused_until(text: str) -> datetime | None:
    """A CSV ``paused_until`` cell: empty, or an ISO 8601 time (no zone: UTC)."""
    text = text.strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"paused_until {text!r} is not an ISO 8601 time (for example 2026-12-24T00:00Z)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet reads as the start of a formula (OWASP's list for CSV injection)."""


def _to_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text: a value that would start a formula (an
    interest typed into the web form as ``=HYPERLINK(...)``) gets a leading ``'``."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _from_cell(value: str) -> str:
    """``_to_cell`` undone, so an export imports back unchanged."""
    if value.startswith("'") and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


def to_csv(subscribers: Iterable[Subscriber]) -> str:
    """Subscribers as CSV with a header row (``read_csv`` reads it back)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for s in subscribers:
        row = [
            s.email,
            s.name,
            ";".join(s.digests),
            ";".join(s.interests),
            ";".join(s.topics),
            s.timezone,
            s.format,
            s.status,
            "" if s.local_hour is None else str(s.local_hour),
            "" if s.paused_until is None else s.paused_until.isoformat(),
        ]
        w.writerow([_to_cell(c) for c in row])
    return buf.getvalue()


def _merge_digests(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    # An empty list means every digest: merging with it keeps "every digest".
    if not old or not new:
        return ()
    return tuple(dict.fromkeys((*old, *new)))


def add_subscriber(
    store: Store,
    address: str,
    *,
    now: datetime,
    name: str | None = None,
    digests: Sequence[str] = (),
    fmt: MailFormat | None = None,
    interests: Sequence[str] | None = None,
    topics: Sequence[str] | None = None,
    timezone: str | None = None,
) -> tuple[Subscriber, bool]:
    """Add (or re-activate) a subscriber. Returns (subscriber, created). An existing
    subscriber keeps their other digests; ``interests`` and ``topics`` replace theirs
    when given."""
    email = normalize_address(address)
    found = get_subscriber(store, email)
    if found is None:
        sub = Subscriber(
            email=email,
            name=name or "",
            digests=tuple(dict.fromkeys(digests)),
            interests=tuple(interests or ()),
            topics=tuple(dict.fromkeys(topics or ())),
            format=fmt or "html",
            timezone=timezone or "UTC",
        )
        return save_subscriber(store, sub, now=now), True
    sub = replace(
        found,
        name=found.name if name is None else name,
        digests=_merge_digests(found.digests, tuple(digests)),
        interests=found.interests if interests is None else tuple(interests),
        topics=found.topics if topics is None else tuple(dict.fromkeys(topics)),
        format=fmt or found.format,
        timezone=timezone or found.timezone,
        status="active",
    )
    return save_subscriber(store, sub, now=now), False


def remove_subscriber(
    store: Store,
    address: str,
    *,
    now: datetime,
    digest: str | None = None,
    known_digests: Sequence[str] = (),
) -> Subscriber | None:
    """Unsubscribe from one digest, or from everything (``digest`` None). The record is
    kept as ``unsubscribed`` so that nothing is sent to it again. None when unknown."""
    email = normalize_address(address)
    found = get_subscriber(store, email)
    if found is None:
        return None
    if digest is not None:
        current = found.digests or tuple(known_digests)
        left = tuple(d for d in current if d != digest)
        if left:
            return save_subscriber(store, replace(found, digests=left), now=now)
    return save_subscriber(store, replace(found, status="unsubscribed"), now=now)


def list_subscribers(
    store: Store, *, digest: str | None = None, status: str | None = None
) -> list[Subscriber]:
    """Subscribers, optionally of one digest and/or in one status."""
    subs = all_subscribers(store)
    if digest is not None:
        subs = [s for s in subs if not s.digests or digest in s.digests]
    if status is not None:
        subs = [s for s in subs if s.status == status]
    return subs


@dataclass
class ImportReport:
    """What an import did."""

    added: int = 0
    updated: int = 0
    skipped: list[CsvProblem] = field(default_factory=list)
    """Bad lines, and people who unsubscribed (an import never re-subscribes them)."""


def import_subscribers(
    store: Store,
    text: str,
    *,
    now: datetime,
    digests: Sequence[str] = (),
    configs: Sequence[DigestConfig] | None = None,
) -> ImportReport:
    """Import CSV text: good rows are added or merged, bad ones reported by line
    (``configs``, the configured digests, check the rows' topics)."""
    rows = read_csv(text, digests=digests, configs=configs)
    report = ImportReport(skipped=list(rows.problems))
    for line, sub in rows.subscribers:
        found = get_subscriber(store, sub.email)
        if found is None:
            save_subscriber(store, sub, now=now)
            report.added += 1
            continue
        if found.status != "active":
            report.skipped.append(
                CsvProblem(line, sub.email, f"is {found.status}: left as is (use `add`)")
            )
            continue
        merged = replace(
            found,
            name=sub.name or found.name,
            digests=_merge_digests(found.digests, sub.digests),
            interests=sub.interests or found.interests,
            topics=sub.topics or found.topics,
            format=sub.format,
            timezone=sub.timezone,
            local_hour=sub.local_hour if sub.local_hour is not None else found.local_hour,
            paused_until=sub.paused_until or found.paused_until,
        )
        save_subscriber(store, merged, now=now)
        report.updated += 1
    report.skipped.sort(key=lambda p: p.line)
    return report


def leave_digest(
    store: Store, email: str, digest: str, configured: Sequence[str], *, now: datetime
) -> bool:
    """Take ``email`` off ``digest``; with no digest left the address is unsubscribed.
    Returns whether anything changed (False again and again: it is idempotent)."""
    sub = get_subscriber(store, email)
    if sub is None or sub.status in ("unsubscribed", "bounced"):
        return False
    current = list(sub.digests) or list(configured)
    if digest not in current:
        return False
    remaining = tuple(d for d in current if d != digest)
    if not remaining:
        set_status(store, email, "unsubscribed", now=now)
        return True
    save_subscriber(store, replace(sub, digests=remaining), now=now)
    return True
