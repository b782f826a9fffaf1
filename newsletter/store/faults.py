"""Faults of the database itself, said once for every command (issue 11, finding 8).

``database_fault(url)`` is the engine's ``handle_error`` listener (``database.make_engine``):
a corrupt file, a read-only file, a full disk, an I/O error, a lock held too long or an
unreachable server becomes one ``StoreError`` naming the database and the likely cause,
instead of a driver traceback. The failed statement's transaction is rolled back by
SQLAlchemy as before, so nothing already stored is touched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from newsletter.errors import StoreError
from newsletter.store import migrate

_FAULTS = (
    # (words of the driver's message, what it most likely means)
    (("malformed", "not a database", "file is encrypted"), "the file is corrupt"),
    (("readonly", "read-only", "read only"), "the file or its folder is read-only"),
    (("disk is full", "no space", "disk full"), "the disk is full"),
    (("disk i/o error",), "a disk I/O error (failing disk, full disk or a file removed)"),
    (("locked", "busy"), "another process holds a lock on it"),
    (("unable to open", "could not open", "cannot open"), "it cannot be opened (path, permission)"),
    (
        ("could not connect", "connection refused", "timeout expired", "server closed"),
        "the database server cannot be reached",
    ),
)


def _fault_cause(message: str) -> str:
    lowered = message.lower()
    return next(
        (cause for words, cause in _FAULTS if any(w in lowered for w in words)),
        "the database reported an error",
    )


def database_fault(url: str) -> Callable[[Any], None]:
    """A ``handle_error`` listener: a fault of the database itself (corrupt, read-only,
    disk full, locked, unreachable) becomes one ``StoreError`` naming the database and the
    likely cause, for every statement of every command (issue 11, finding 8). Errors the
    code handles itself (a unique-key race, ``IntegrityError``) pass through."""
    where = migrate.display_url(url)

    def handle(context: Any) -> None:
        error = context.sqlalchemy_exception
        if not isinstance(error, sa.exc.OperationalError | sa.exc.DatabaseError) or isinstance(
            error, sa.exc.IntegrityError | sa.exc.ProgrammingError | sa.exc.NotSupportedError
        ):
            return
        original = context.original_exception
        detail = " ".join(str(original).split())[:200]
        raise StoreError(f"database {where}: {_fault_cause(detail)} ({detail})") from original

    return handle
