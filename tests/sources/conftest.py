"""Fixtures of the fetch tests: one real threaded HTTP server per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    """A real threaded HTTP server on a free port (threaded, so concurrency is real)."""
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield srv
    srv.clear()
    srv.stop()


@pytest.fixture
def httpserver(server: HTTPServer) -> Iterator[HTTPServer]:
    """The shared server, with no handlers or log left from the previous test."""
    server.clear()
    yield server
    server.clear()
