"""The outbox: the messages of each edition to send, and their queries.

The outbox holds one row per (edition, subscriber), unique, and moves through::

    queued ──claim──> sending ──> sent        (server reply stored)
      ^                  │   └──> failed      (5xx, or too many attempts)
      │                  └──────> retry ──(next_try passed)──> claimed again
      └── suppressed (the subscriber left before the row was sent)

Claims are atomic (``UPDATE ... WHERE state IN ('queued', 'retry') ...`` tagged with a
claim id, then read back by that id), so several sender processes can share one
database. On PostgreSQL the candidate rows are selected ``FOR UPDATE SKIP LOCKED``: two
senders claiming at once take different rows instead of queueing on the same ones (on
SQLite, ``BEGIN IMMEDIATE`` makes claims take turns). A sender renews the lease of the
rows it holds while it sends them (``renew``). A row left in ``sending`` by a process that
died is claimed again once its lease runs out, or at once by a run on the same host when
the old process is gone (the next run, or one still sending when it runs out of rows):
delivery is *at least once*, and the window for a duplicate is the one message per
connection that the server may have accepted just before the crash. A row recorded as
``sent`` is never sent again.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa

from newsletter.models import MailFormat, Subscriber
from newsletter.store.database import Store
from newsletter.store.engine import insert_or_skip
from newsletter.store.schema import outbox_table, subscribers_table

OutboxState = Literal["queued", "sending", "sent", "retry", "failed", "suppressed"]
STATES: tuple[OutboxState, ...] = ("queued", "sending", "sent", "retry", "failed", "suppressed")
DEFAULT_LEASE = timedelta(minutes=10)
"""How long a claim protects a row in ``sending`` from other processes."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One claimed message: who gets which edition, and the claim that owns it."""

    id: int
    edition_id: int
    subscriber_id: int
    email: str
    state: str
    attempts: int
    claim: str | None = None
    name: str = ""
    interests: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    format: MailFormat = "html"
    reply: str | None = None
    last_error: str | None = None


def enqueue(
    store: Store, edition_id: int, subscribers: Iterable[Subscriber], *, now: datetime
) -> int:
    """Add a queued row for each subscriber who has none for this edition yet; returns
    how many were added. Safe to call again: existing rows are left as they are."""
    t = outbox_table
    subs = [s for s in subscribers if s.id is not None]
    added = 0
    with store.begin() as conn:
        # Another sender may enqueue the same edition at the same time (PostgreSQL does
        # not serialize the two transactions): its rows are skipped, not an error.
        # (Counted by RETURNING: executemany's rowcount is not portable.)
        insert = insert_or_skip(conn, t).returning(t.c.id)
        have = {
            r[0]
            for r in conn.execute(sa.select(t.c.subscriber_id).where(t.c.edition_id == edition_id))
        }
        rows = [
            {
                "edition_id": edition_id,
                "subscriber_id": s.id,
                "email": s.email,
                "state": "queued",
                "attempts": 0,
                "created_at": now,
            }
            for s in subs
            if s.id not in have
        ]
        for i in range(0, len(rows), 500):
            added += len(conn.execute(insert, rows[i : i + 500]).all())
    return added


def new_claim_prefix() -> str:
    """``host:pid:random``: who claims rows (lets a restarted run on the same host see
    that the claimant is dead)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _claimant_dead(claim: str) -> bool:
    host, _, rest = claim.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def recover(
    store: Store, edition_id: int | None, *, now: datetime, lease: timedelta = DEFAULT_LEASE
) -> int:
    """Put rows stuck in ``sending`` back in ``retry`` when their claimant died (same
    host, process gone) or their lease ran out. Returns how many."""
    t = outbox_table
    q = sa.select(t.c.id, t.c.claim, t.c.claimed_at).where(t.c.state == "sending")
    if edition_id is not None:
        q = q.where(t.c.edition_id == edition_id)
    with store.engine.connect() as conn:
        stuck = conn.execute(q).all()
    back = [
        (rid, claim)
        for rid, claim, claimed_at in stuck
        if claimed_at is None or claimed_at <= now - lease or _claimant_dead(claim or "")
    ]
    n = 0
    with store.begin() as conn:
        for rid, claim in back:
            n += conn.execute(
                sa.update(t)
                .where(t.c.id == rid, t.c.state == "sending", t.c.claim == claim)
                .values(
                    state="retry",
                    next_try=now,
                    claim=None,
                    last_error="interrupted while sending (the run stopped); sent again",
                )
            ).rowcount
    return n


def _claim_statements() -> tuple[Any, Any, Any, Any]:
    # Built once: claims run for every batch of messages, and building the statements
    # each time costs more than the database work itself.
    t, s = outbox_table, subscribers_table
    edition = t.c.edition_id == sa.bindparam("edition_id")
    # Queued rows first, then retries that are due: each query is one range of the
    # (edition_id, state) index, already in id order, so a claim never scans the rows
    # already sent (a single OR of both states sorted the whole edition every time).
    # FOR UPDATE SKIP LOCKED (PostgreSQL; SQLite's compiler leaves it out): rows another
    # sender is claiming right now are passed over instead of waited for.
    # ``id > after``: a claimer starts where its last claim ended. Without it, PostgreSQL
    # walks the primary key from the edition's first row, past every row already sent,
    # at each claim (the planner prefers that order to sorting the index range): a claim
    # near the end of an edition of 100,000 took 50 ms, and the edition O(n²).
    queued = (
        sa.select(t.c.id)
        .where(edition, t.c.state == "queued", t.c.id > sa.bindparam("after"))
        .order_by(t.c.id)
        .limit(sa.bindparam("limit"))
        .with_for_update(skip_locked=True)
    )
    retry = (
        sa.select(t.c.id)
        .where(
            edition,
            t.c.state == "retry",
            sa.or_(t.c.next_try.is_(None), t.c.next_try <= sa.bindparam("now")),
        )
        .order_by(t.c.id)
        .limit(sa.bindparam("limit"))
        .with_for_update(skip_locked=True)
    )
    ids: Any = sa.bindparam("ids", expanding=True)
    due = sa.or_(
        t.c.state == "queued",
        sa.and_(
            t.c.state == "retry",
            sa.or_(t.c.next_try.is_(None), t.c.next_try <= sa.bindparam("now")),
        ),
    )
    take = (
        sa.update(t)
        .where(t.c.id.in_(ids), due)
        .values(
            state="sending",
            claim=sa.bindparam("token"),
            claimed_at=sa.bindparam("now"),
            attempts=t.c.attempts + 1,
        )
    )
    read = (
        sa.select(t, s.c.name, s.c.interests, s.c.topics, s.c.format)
        .join(s, s.c.id == t.c.subscriber_id)
        .where(t.c.id.in_(ids), t.c.claim == sa.bindparam("token"), t.c.state == "sending")
        .order_by(t.c.id)
    )
    return queued, retry, take, read


_CLAIM = _claim_statements()


def claim(
    store: Store,
    edition_id: int,
    *,
    now: datetime,
    limit: int,
    prefix: str,
    after: int = 0,
) -> list[OutboxRow]:
    """Atomically take up to ``limit`` rows that are due (queued, or retry whose time has
    come) and mark them ``sending``. Queued rows are taken before retries, in id order,
    from the first one after ``after`` (the last id the caller claimed: the ones before
    it are taken already)."""
    queued, retry, take, read = _CLAIM
    token = f"{prefix}:{secrets.token_hex(6)}"
    with store.begin() as conn:
        first = {"edition_id": edition_id, "limit": limit, "after": after}
        ids = [r[0] for r in conn.execute(queued, first)]
        if len(ids) < limit:
            params = {"edition_id": edition_id, "limit": limit - len(ids), "now": now}
            ids += [r[0] for r in conn.execute(retry, params)]
        if not ids:
            return []
        # The state condition is re-checked by the UPDATE itself: a row another process
        # claimed in between is simply not ours (we read back by claim token).
        conn.execute(take, {"ids": ids, "now": now, "token": token})
        rows = conn.execute(read, {"ids": ids, "token": token}).mappings().all()
    return [_outbox_row(r) for r in rows]


def renew(store: Store, edition_id: int, prefix: str, *, now: datetime) -> int:
    """Renew the lease of every row of the edition that the claims made under ``prefix``
    hold (``claimed_at = now``), so that no other sender's ``recover`` takes them back
    while they are still being sent. Returns how many rows were renewed."""
    t = outbox_table
    with store.begin() as conn:
        return int(
            conn.execute(
                sa.update(t)
                .where(
                    t.c.edition_id == edition_id,
                    t.c.state == "sending",
                    t.c.claim.startswith(f"{prefix}:", autoescape=True),
                )
                .values(claimed_at=now)
            ).rowcount
        )


def _outbox_row(r: Any) -> OutboxRow:
    """An ``OutboxRow`` from a result row; the subscriber's preferences are there when the
    query joined the subscribers table (as ``claim`` does)."""
    return OutboxRow(
        id=r["id"],
        edition_id=r["edition_id"],
        subscriber_id=r["subscriber_id"],
        email=r["email"],
        state=r["state"],
        attempts=r["attempts"],
        claim=r["claim"],
        name=r.get("name") or "",
        interests=tuple(json.loads(r.get("interests") or "[]")),
        topics=tuple(json.loads(r.get("topics") or "[]")),
        format="markdown" if r.get("format") == "markdown" else "html",
        reply=r.get("reply"),
        last_error=r.get("last_error"),
    )


_FINISH: dict[tuple[str, ...], Any] = {}


def _finish_statement(key: tuple[str, ...]) -> Any:
    # One prebuilt statement per set of columns: this runs once per message, and building
    # the UPDATE each time costs more than the database write itself.
    stmt = _FINISH.get(key)
    if stmt is None:
        t = outbox_table
        stmt = (
            sa.update(t)
            .where(
                t.c.id == sa.bindparam("row_id"),
                t.c.state == "sending",
                t.c.claim == sa.bindparam("row_claim"),
            )
            .values(claim=None, **{k: sa.bindparam(f"v_{k}") for k in key})
        )
        _FINISH[key] = stmt
    return stmt


def _finish_params(row: OutboxRow, values: dict[str, Any]) -> dict[str, Any]:
    return {"row_id": row.id, "row_claim": row.claim, **{f"v_{k}": v for k, v in values.items()}}


def _finish(store: Store, row: OutboxRow, **values: Any) -> bool:
    stmt = _finish_statement(tuple(sorted(values)))
    with store.begin() as conn:
        n = conn.execute(stmt, _finish_params(row, values)).rowcount
    return bool(n)


def finish_many(store: Store, outcomes: Sequence[tuple[OutboxRow, dict[str, Any]]]) -> int:
    """Record several outcomes (``(row, values)`` from ``sent_values`` and friends) in one
    transaction; returns how many rows still held their claim and were updated."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row, values in outcomes:
        groups.setdefault(tuple(sorted(values)), []).append(_finish_params(row, values))
    n = 0
    with store.begin() as conn:
        for key, params in groups.items():
            n += conn.execute(_finish_statement(key), params).rowcount
    return n


def sent_values(*, reply: str, message_id: str, now: datetime) -> dict[str, Any]:
    """The columns ``mark_sent`` writes."""
    return {
        "state": "sent",
        "reply": reply,
        "message_id": message_id,
        "sent_at": now,
        "last_error": None,
    }


def retry_values(*, error: str, next_try: datetime) -> dict[str, Any]:
    """The columns ``mark_retry`` writes."""
    return {"state": "retry", "last_error": error, "next_try": next_try}


def failed_values(*, error: str) -> dict[str, Any]:
    """The columns ``mark_failed`` writes."""
    return {"state": "failed", "last_error": error}


def mark_sent(store: Store, row: OutboxRow, *, reply: str, message_id: str, now: datetime) -> bool:
    """Record a delivery (with the server's reply). False if the claim was lost."""
    return _finish(store, row, **sent_values(reply=reply, message_id=message_id, now=now))


def mark_retry(store: Store, row: OutboxRow, *, error: str, next_try: datetime) -> bool:
    """Record a temporary failure: try again from ``next_try``."""
    return _finish(store, row, **retry_values(error=error, next_try=next_try))


def mark_failed(store: Store, row: OutboxRow, *, error: str) -> bool:
    """Record a permanent failure."""
    return _finish(store, row, **failed_values(error=error))


def release(store: Store, rows: Sequence[OutboxRow]) -> None:
    """Give back claimed rows that were never attempted (the run stopped before them)."""
    t = outbox_table
    with store.begin() as conn:
        for row in rows:
            conn.execute(
                sa.update(t)
                .where(t.c.id == row.id, t.c.state == "sending", t.c.claim == row.claim)
                .values(state="retry", next_try=None, claim=None, attempts=t.c.attempts - 1)
            )


def counts(store: Store, edition_id: int) -> dict[str, int]:
    """How many rows of the edition are in each state."""
    t = outbox_table
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.state, sa.func.count())
            .where(t.c.edition_id == edition_id)
            .group_by(t.c.state)
        ).all()
    out: dict[str, int] = dict.fromkeys(STATES, 0)
    out.update({str(state): int(n) for state, n in rows})
    return out


def rows(store: Store, edition_id: int, state: str | None = None) -> list[OutboxRow]:
    """The edition's rows (optionally in one state), by id."""
    t = outbox_table
    q = sa.select(t).where(t.c.edition_id == edition_id).order_by(t.c.id)
    if state is not None:
        q = q.where(t.c.state == state)
    with store.engine.connect() as conn:
        found = conn.execute(q).mappings().all()
    return [_outbox_row(r) for r in found]


def pending_for(store: Store, edition_id: int, subscribers: Sequence[Subscriber]) -> int:
    """How many of ``subscribers`` have not been sent (or failed) this edition yet."""
    t = outbox_table
    with store.engine.connect() as conn:
        done = {
            r[0]
            for r in conn.execute(
                sa.select(t.c.subscriber_id).where(
                    t.c.edition_id == edition_id, t.c.state.in_(("sent", "failed", "suppressed"))
                )
            )
        }
    return sum(1 for s in subscribers if s.id not in done)


def suppress_subscribers(
    store: Store, edition_id: int, subscriber_ids: Sequence[int], *, reason: str
) -> int:
    """Mark these subscribers' not-yet-sent rows of an edition as suppressed, saying why
    (a personal digest with nothing in it is not worth an email)."""
    if not subscriber_ids:
        return 0
    t = outbox_table
    with store.begin() as conn:
        return int(
            conn.execute(
                sa.update(t)
                .where(
                    t.c.edition_id == edition_id,
                    t.c.state.in_(("queued", "retry")),
                    t.c.subscriber_id.in_(list(subscriber_ids)),
                )
                .values(state="suppressed", claim=None, last_error=reason)
            ).rowcount
        )


def suppress_inactive(store: Store, edition_id: int) -> int:
    """Mark not-yet-sent rows of subscribers who are no longer active as suppressed."""
    t, s = outbox_table, subscribers_table
    with store.begin() as conn:
        return int(
            conn.execute(
                sa.update(t)
                .where(
                    t.c.edition_id == edition_id,
                    t.c.state.in_(("queued", "retry")),
                    t.c.subscriber_id.in_(
                        sa.select(s.c.id).where(s.c.status != "active").scalar_subquery()
                    ),
                )
                .values(state="suppressed", claim=None)
            ).rowcount
        )
