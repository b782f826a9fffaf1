"""Subscribers: validated addresses, add/remove, CSV import with line-numbered problems,
export that imports back."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter.errors import AddressError
from newsletter.models import Subscriber
from newsletter.services.subscriptions import (
    add_subscriber,
    import_subscribers,
    list_subscribers,
    normalize_address,
    read_csv,
    remove_subscriber,
    to_csv,
)
from newsletter.store.database import Store

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("ada@example.org", "ada@example.org"),
        ("  Ada@EXAMPLE.org ", "ada@example.org"),
        ("bob@bücher.example", "bob@xn--bcher-kva.example"),
    ],
    ids=["plain", "case-and-space", "idn-domain"],
)
def test_addresses_are_normalized(raw: str, normal: str) -> None:
    assert normalize_address(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "ada",
        "ada@",
        "@example.org",
        "a@@example.org",
        "ada@example",
        "a b@example.org",
        "ada@example.org\r\nBcc: x@example.org",
        "jörg@example.org",
    ],
    ids=[
        "empty",
        "no-at",
        "no-domain",
        "no-local",
        "double-at",
        "no-tld",
        "space",
        "crlf",
        "utf8-local",
    ],
)
def test_bad_addresses_are_refused(raw: str) -> None:
    with pytest.raises(AddressError):
        normalize_address(raw)


@given(st.text(max_size=60))
def test_any_text_is_an_address_or_an_address_error(raw: str) -> None:
    try:
        out = normalize_address(raw)
    except AddressError:
        return
    assert out.isascii() and "@" in out and "\n" not in out and "\r" not in out


def test_add_then_add_again_merges(store: Store) -> None:
    sub, created = add_subscriber(store, "ada@example.org", now=NOW, digests=["daily"])
    assert created and sub.digests == ("daily",) and sub.status == "active"
    sub, created = add_subscriber(store, "ADA@example.org", now=NOW, digests=["weekly"], name="Ada")
    assert not created and sub.digests == ("daily", "weekly") and sub.name == "Ada"


def test_remove_from_one_digest_then_all(store: Store) -> None:
    add_subscriber(store, "ada@example.org", now=NOW)  # every digest
    sub = remove_subscriber(
        store, "ada@example.org", now=NOW, digest="daily", known_digests=["daily", "weekly"]
    )
    assert sub is not None and sub.digests == ("weekly",) and sub.status == "active"
    sub = remove_subscriber(store, "ada@example.org", now=NOW)
    assert sub is not None and sub.status == "unsubscribed"
    assert remove_subscriber(store, "nobody@example.org", now=NOW) is None
    assert list_subscribers(store, status="active") == []


def test_list_by_digest(store: Store) -> None:
    add_subscriber(store, "all@example.org", now=NOW)
    add_subscriber(store, "daily@example.org", now=NOW, digests=["daily"])
    add_subscriber(store, "weekly@example.org", now=NOW, digests=["weekly"])
    assert [s.email for s in list_subscribers(store, digest="daily")] == [
        "all@example.org",
        "daily@example.org",
    ]


CSV = """email,name,digests,interests,format
ada@example.org,Ada Lovelace,daily;weekly,llm;vision,html
not-an-address,Bad,,,
bob@example.org,Bob,,,markdown
ada@example.org,Ada again,,,
"carol@example.org","Carol, PhD",,,
dave@example.org,Dave,,,pdf
"""


def test_read_csv_reports_each_bad_line_and_keeps_the_rest() -> None:
    rows = read_csv(CSV)
    assert [(line, s.email) for line, s in rows.subscribers] == [
        (2, "ada@example.org"),
        (4, "bob@example.org"),
        (6, "carol@example.org"),
    ]
    ada = rows.subscribers[0][1]
    assert ada.digests == ("daily", "weekly") and ada.interests == ("llm", "vision")
    assert rows.subscribers[1][1].format == "markdown"
    assert rows.subscribers[2][1].name == "Carol, PhD"
    assert [(p.line, p.value) for p in rows.problems] == [
        (3, "not-an-address"),
        (5, "ada@example.org"),
        (7, "dave@example.org"),
    ]
    assert "already on line 2" in str(rows.problems[1])


def test_read_csv_without_header() -> None:
    rows = read_csv("ada@example.org,Ada\n\nbob@example.org\n", digests=["daily"])
    assert [(s.email, s.name, s.digests) for _, s in rows.subscribers] == [
        ("ada@example.org", "Ada", ("daily",)),
        ("bob@example.org", "", ("daily",)),
    ]


def test_import_never_resubscribes_people_who_left(store: Store) -> None:
    add_subscriber(store, "bob@example.org", now=NOW)
    remove_subscriber(store, "bob@example.org", now=NOW)
    report = import_subscribers(store, CSV, now=NOW)
    assert report.added == 2 and report.updated == 0
    assert [p.line for p in report.skipped] == [3, 4, 5, 7]
    assert {s.email: s.status for s in list_subscribers(store)}["bob@example.org"] == (
        "unsubscribed"
    )


def test_export_imports_back(store: Store, tmp_path: Path) -> None:
    import_subscribers(store, CSV, now=NOW)
    text = to_csv(list_subscribers(store))
    again = read_csv(text)
    assert not again.problems
    assert [s.email for _, s in again.subscribers] == [s.email for s in list_subscribers(store)]
    assert again.subscribers[0][1].digests == ("daily", "weekly")


def test_topics_round_trip_through_csv(store: Store) -> None:
    from newsletter.config import DigestConfig, TopicConfig

    configs = [
        DigestConfig(
            name="daily",
            topics=(TopicConfig(name="Robots, arms & hands"), TopicConfig(name="Quantum")),
        ),
        DigestConfig(name="weekly", topics=(TopicConfig(name="Climate"),)),
    ]
    text = (
        "email,digests,topics\n"
        'ada@example.org,daily,"Quantum;Robots, arms & hands"\n'
        "bob@example.org,weekly,Quantum\n"
        "carol@example.org,,Climate;Quantum\n"
    )
    report = import_subscribers(store, text, now=NOW, configs=configs)
    assert report.added == 2
    [problem] = report.skipped
    assert problem.line == 3 and "'Quantum'" in problem.reason and "Climate" in problem.reason
    ada = add_subscriber(store, "ada@example.org", now=NOW)[0]
    assert ada.topics == ("Quantum", "Robots, arms & hands")  # kept when not given
    again = read_csv(to_csv(list_subscribers(store)), configs=configs)
    assert not again.problems
    assert [(s.email, s.topics) for _, s in again.subscribers] == [
        ("ada@example.org", ("Quantum", "Robots, arms & hands")),
        ("carol@example.org", ("Climate", "Quantum")),
    ]
    bob, _ = add_subscriber(store, "bob@example.org", now=NOW, topics=["Climate", "Climate"])
    assert bob.topics == ("Climate",)
    assert add_subscriber(store, "bob@example.org", now=NOW, topics=[])[0].topics == ()


def test_export_escapes_cells_a_spreadsheet_would_run_and_imports_them_back() -> None:
    hostile = Subscriber(
        email="ada@example.org",
        name="=cmd|' /C calc'!A0",
        interests=('=HYPERLINK("https://evil.example","click")', "+1", "open models"),
        digests=("daily",),
    )
    text = to_csv([hostile])
    cells = next(csv.DictReader(io.StringIO(text)))
    # No cell starts a formula: each is text to a spreadsheet.
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells.values())
    assert cells["name"] == "'=cmd|' /C calc'!A0"
    assert cells["interests"].startswith("'=HYPERLINK(")
    # And the export reads back as it was.
    [(_, back)] = read_csv(text, digests=("daily",)).subscribers
    assert back.name == hostile.name
    assert back.interests == hostile.interests


def test_hour_and_pause_round_trip_through_csv(store: Store) -> None:
    from newsletter.store.subscribers import save_subscriber

    pause = datetime(2026, 12, 24, tzinfo=UTC)
    save_subscriber(
        store, Subscriber(email="ada@example.org", local_hour=7, paused_until=pause), now=NOW
    )
    save_subscriber(store, Subscriber(email="bob@example.org"), now=NOW)
    text = to_csv(list_subscribers(store))
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(text))}
    assert rows["ada@example.org"]["local_hour"] == "7"
    assert rows["ada@example.org"]["paused_until"] == "2026-12-24T00:00:00+00:00"
    assert rows["bob@example.org"]["local_hour"] == rows["bob@example.org"]["paused_until"] == ""
    again = {s.email: s for _, s in read_csv(text).subscribers}
    assert again["ada@example.org"].local_hour == 7
    assert again["ada@example.org"].paused_until == pause
    assert again["bob@example.org"].local_hour is None


def test_bad_hour_and_pause_cells_are_named_by_line() -> None:
    text = (
        "email,local_hour,paused_until\n"
        "ada@example.org,25,\n"
        "bob@example.org,,next tuesday\n"
        "carol@example.org,6,2026-12-24\n"
    )
    rows = read_csv(text)
    assert [(p.line, p.reason.split(" ")[0]) for p in rows.problems] == [
        (2, "local_hour"),
        (3, "paused_until"),
    ]
    assert "0 to 23" in rows.problems[0].reason and "2026-12-24T00:00Z" in rows.problems[1].reason
    [(_, carol)] = rows.subscribers
    assert carol.local_hour == 6 and carol.paused_until == datetime(2026, 12, 24, tzinfo=UTC)
