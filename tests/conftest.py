"""Shared fixtures: a clean environment, a fresh store (SQLite; also PostgreSQL where a
module asks, see ``tests/pg.py``), a CLI runner, an SMTP sink,
a TLS certificate, a browser; and the Hypothesis profiles.

Test data (entries, subscribers, configuration files, seeded stores) comes from
``tests/factories.py``; waiting on threads and processes from ``tests/support.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, settings
from pytest_httpserver import HTTPServer

from newsletter.store.database import Store
from tests.factories import FEEDS, db_url
from tests.pg import PgCluster, PgError
from tests.smtp_server import SmtpSink, smtp_server, tls_files

# -- Hypothesis ------------------------------------------------------------------------------
# Two profiles, chosen by the CI variable (.ci/run runs under CI=true):
#   ci   derandomized: the same examples on every run, so a failure in CI reproduces on any
#        machine (print_blob prints the @reproduce_failure line too); no example database,
#        nothing carried over between runs.
#   dev  random examples (finds new failures over time), saved in .hypothesis/.
# Neither has a deadline: a test never fails for being slow on a busy machine, and
# too_slow is not a health-check failure in CI for the same reason. A test's own
# @settings(max_examples=...) still applies under either profile.
settings.register_profile(
    "ci",
    derandomize=True,
    print_blob=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.load_profile(
    "ci" if os.environ.get("CI", "").lower() not in ("", "0", "false", "no") else "dev"
)


# -- environment, store, CLI -----------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No NEWSLETTER_* variable leaks in from the developer's shell, and the user's
    config/data/cache folders point into a temporary folder."""
    for key in list(os.environ):
        if key.startswith("NEWSLETTER_"):
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL server for the session (``tests/pg.py``), started the first time a
    test asks for a PostgreSQL database and stopped at the end. Missing server binaries
    fail the test with what to install: the PostgreSQL tests are never skipped."""
    try:
        cluster = PgCluster()
    except PgError as exc:
        pytest.fail(str(exc))
    try:
        cluster.start()
    except PgError as exc:
        cluster.stop()
        pytest.fail(f"cannot start the test PostgreSQL cluster: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The test's database: SQLite, ``factories.db_url(tmp_path)`` (the database of
    ``factories.write_config(tmp_path)``). The store, outbox, delivery and daemon tests
    override it with ``tests.pg.on_both_databases()``: there it is also a PostgreSQL
    database of the session's cluster."""
    return db_url(tmp_path)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A fresh store on ``database_url``."""
    with Store(database_url) as s:
        yield s


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def feeds_dir() -> Path:
    return FEEDS


# -- HTTP ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def threaded_httpserver() -> Iterator[HTTPServer]:
    """A real HTTP server (pytest-httpserver) on port 0 that answers each request in a
    thread of its own, so a held answer does not hold up the others and concurrency is
    real. Shared by the session: a test sets it up with ``clear()`` and
    ``expect_request``."""
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield srv
    srv.clear()
    if srv.is_running():
        srv.stop()


# -- mail ------------------------------------------------------------------------------------


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """An SMTP server for one test, without TLS or AUTH (``tests.smtp_server.smtp_server``
    starts the other kinds), bound to port 0."""
    with smtp_server() as (controller, recorder):
        yield SmtpSink(int(controller.port), recorder, controller)


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1: (cert.pem, key.pem)."""
    return tls_files(tmp_path_factory.mktemp("tls"))


# -- browser ---------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",  # everything here is on 127.0.0.1
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's chromium driven by Playwright, launched once per module.

    Not once per session: Playwright's sync API keeps an event loop running in the main
    thread while it is open, and every later test that calls ``asyncio.run`` would fail.
    Tests that use it run their coroutines in another thread."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (bash .ci/ensure-browser, or "
            "apt-get install chromium) to run the browser test"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[test]'")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
