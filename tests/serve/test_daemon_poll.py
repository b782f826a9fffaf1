"""The daemon's poll job pays start-up once: one HTTP client (its connection pool) and one
database engine serve every poll, and stop closes the client the daemon made. A real
HTTP server counts connections; the database is a real SQLite file."""

from __future__ import annotations

import asyncio
import http.server
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsletter.config import settings_from_dict
from newsletter.sources.fetch import HttpFetcher
from newsletter.sources.memory import MemoryFetcher, MemoryResponse
from newsletter.store.database import Store
from tests.pg import on_both_databases
from tests.serve.test_daemon import FEED, Clock, make_daemon

# The tests that use ``store`` run on SQLite and PostgreSQL.
database_url = on_both_databases()


class CountingHandler(http.server.BaseHTTPRequestHandler):
    """Serves FEED with an ETag (304 when it matches) and records, per request, the
    client's port: one port per connection."""

    protocol_version = "HTTP/1.1"
    ports: list[int]

    def do_GET(self) -> None:
        self.ports.append(self.client_address[1])
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = FEED.read_bytes()
        self.send_response(200)
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_polls_share_one_http_client_closed_at_stop(tmp_path: Path, store: Store) -> None:
    ports: list[int] = []
    handler = type("Handler", (CountingHandler,), {"ports": ports})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings = settings_from_dict(
        {
            "sources": [{"name": f"s{i}", "url": f"{base}/f{i}.xml"} for i in range(4)],
            "fetch": {"per_host": 2},
        },
        env={},
    )
    clock = Clock(datetime(2030, 6, 3, 6, 0, tzinfo=UTC))
    daemon = make_daemon(settings, store, clock)

    async def two_polls_then_stop() -> tuple[bool, int, bool]:
        await daemon.poll()
        fetcher = daemon.fetcher
        assert isinstance(fetcher, HttpFetcher)
        client = fetcher.client
        clock.now += timedelta(hours=1)  # every source is due again
        await daemon.poll()
        same = daemon.fetcher is fetcher and fetcher.client is client
        await daemon.stop()
        return same, fetcher.clients_made, client.is_closed

    try:
        same, made, closed = asyncio.run(two_polls_then_stop())
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

    assert same and made == 1
    assert closed and daemon.fetcher is None
    states = store.source_states()
    assert all(states[f"s{i}"].etag == '"v1"' for i in range(4))
    assert len(ports) == 8  # four GETs per poll
    # Two connections at a time, the last request of a poll closing its own: the second
    # poll finds the other one still open. A client per poll would have used four.
    assert len(set(ports)) == 3, ports


def test_a_given_fetcher_serves_the_polls(tmp_path: Path, store: Store) -> None:
    url = "https://feeds.test/atom.xml"
    fetcher = MemoryFetcher({url: MemoryResponse(FEED.read_bytes(), headers={"ETag": '"m"'})})
    settings = settings_from_dict({"sources": [{"name": "m", "url": url}]}, env={})
    clock = Clock(datetime(2030, 6, 3, 6, 0, tzinfo=UTC))
    daemon = make_daemon(settings, store, clock)
    daemon.fetcher = fetcher

    async def polls() -> None:
        await daemon.poll()
        clock.now += timedelta(hours=1)
        await daemon.poll()
        await daemon.stop()

    asyncio.run(polls())

    assert [r.headers.get("If-None-Match") for r in fetcher.requests] == [None, '"m"']
    assert daemon.fetcher is fetcher  # not the daemon's to close
    assert store.count_entries() > 0
