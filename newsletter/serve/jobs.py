"""The scheduler's side of the daemon: the job functions APScheduler stores by name, and
the job table they are stored in.

APScheduler saves a job's function as a module path (``newsletter.serve.jobs:job_digest``),
so the functions are module-level and find the running ``Daemon`` here. At start the
daemon reads when each stored job was next due (``take_stored_runs``), then places every
job anew.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from newsletter.serve.daemon import Daemon

JOBSTORE_TABLE = "apscheduler_jobs"


# The running daemon: job functions in a persistent store are saved by name
# ("newsletter.serve.jobs:job_digest"), so they find their daemon here.
_CURRENT: Daemon | None = None


def attach(daemon: Daemon) -> None:
    """Make ``daemon`` the one the job functions below act on."""
    global _CURRENT
    _CURRENT = daemon


def _daemon() -> Daemon:
    if _CURRENT is None:
        raise RuntimeError("no daemon is running")
    return _CURRENT


async def job_poll() -> None:
    """Job: fetch the sources that are due."""
    await _daemon().tracked(_daemon().poll())


async def job_digest(name: str) -> None:
    """Job: send the digest ``name`` for the run that is due now."""
    await _daemon().tracked(_daemon().send_digest(name))


async def job_local(name: str) -> None:
    """Job: send ``name`` to the subscribers whose local hour has come."""
    await _daemon().tracked(_daemon().send_local(name))


async def job_outbox() -> None:
    """Job: deliver messages of recent editions that are waiting for a retry."""
    await _daemon().tracked(_daemon().flush_outbox())


def take_stored_runs(engine: sa.Engine) -> dict[str, datetime | None]:
    """Each stored job's next run, by job id, read from the job table's plain columns; the
    rows are then deleted, since the daemon places every job anew at start.

    The pickled jobs are never loaded: a job written by an earlier release whose function
    has since moved (``newsletter.daemon:job_digest`` before the package was laid out in
    stages) still tells when it was due, so the edition it missed is caught up."""
    with engine.begin() as conn:
        if not sa.inspect(conn).has_table(JOBSTORE_TABLE):
            return {}
        table = sa.table(JOBSTORE_TABLE, sa.column("id"), sa.column("next_run_time"))
        rows = conn.execute(sa.select(table.c.id, table.c.next_run_time)).all()
        conn.execute(sa.delete(table))
    return {
        str(job_id): None if ts is None else datetime.fromtimestamp(float(ts), UTC)
        for job_id, ts in rows
    }
