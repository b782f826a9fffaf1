"""Feed autodiscovery (issue 13, finding 14): a site's address works wherever a feed URL
does (`sources add`, `digest URL`, `sources import --discover`), against a real local
HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from newsletter.cli import main
from newsletter.config import FetchConfig, load_config
from newsletter.errors import SourceError
from newsletter.sources.discover import discover_feed, feed_links, looks_like_feed
from tests.factories import FEEDS, write_config

RSS = (FEEDS / "hackernews-frontpage.rss.xml").read_bytes()
ATOM = (FEEDS / "atom-handmade.xml").read_bytes()
PAGE = """<!doctype html><html><head><title>A blog</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/atom+xml" title="Posts (Atom)" href="/posts.atom">
<link rel="alternate" type="application/rss+xml" title="Posts" href="feeds/posts.rss">
</head><body><p>Hello</p></body></html>"""


def invoke(*args: str | Path) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def site(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request("/").respond_with_data(PAGE, content_type="text/html")
    httpserver.expect_request("/blog/feeds/posts.rss").respond_with_data(
        RSS, content_type="application/rss+xml"
    )
    httpserver.expect_request("/feeds/posts.rss").respond_with_data(
        RSS, content_type="application/rss+xml"
    )
    httpserver.expect_request("/posts.atom").respond_with_data(
        ATOM, content_type="application/atom+xml"
    )
    return httpserver


def test_feed_links_are_absolute_and_rss_first() -> None:
    links = feed_links(PAGE, "https://example.org/blog/")
    assert links == [
        ("https://example.org/blog/feeds/posts.rss", "Posts"),
        ("https://example.org/posts.atom", "Posts (Atom)"),
    ]


def test_looks_like_feed() -> None:
    assert looks_like_feed(RSS, "application/rss+xml")
    assert looks_like_feed(ATOM, "text/xml")
    assert looks_like_feed(b'{"version": "https://jsonfeed.org/version/1.1"}')
    assert not looks_like_feed(PAGE.encode(), "text/html")
    assert not looks_like_feed(PAGE.encode())


def test_a_page_leads_to_the_feed_it_links(site: HTTPServer) -> None:
    found = discover_feed(site.url_for("/"), FetchConfig())
    assert found.feed_url == site.url_for("/feeds/posts.rss") and found.how == "link"
    # A feed URL is its own feed.
    assert discover_feed(site.url_for("/posts.atom"), FetchConfig()).how == "feed"


def test_a_page_without_links_falls_back_to_common_paths(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/").respond_with_data("<html>hi</html>", content_type="text/html")
    httpserver.expect_request("/feed").respond_with_data("nope", status=404)
    httpserver.expect_request("/rss.xml").respond_with_data(RSS, content_type="text/xml")
    found = discover_feed(httpserver.url_for("/"), FetchConfig())
    assert found.feed_url == httpserver.url_for("/rss.xml") and found.how == "path"


def test_no_feed_anywhere_is_a_clear_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/").respond_with_data("<html>hi</html>", content_type="text/html")
    with pytest.raises(SourceError, match='rel="alternate"'):
        discover_feed(httpserver.url_for("/"), FetchConfig())


def test_sources_add_a_site(tmp_path: Path, site: HTTPServer) -> None:
    cfg = write_config(tmp_path)
    r = invoke("sources", "add", site.url_for("/"), "--name", "blog", "--config", cfg)
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    added = load_config(cfg).source_named("blog")
    assert added is not None and added.url == site.url_for("/feeds/posts.rss")
    again = invoke("sources", "add", site.url_for("/"), "--config", cfg)
    assert again.exit_code == 2 and "already configured" in again.output  # type: ignore[attr-defined]


def test_digest_of_a_site_url(site: HTTPServer) -> None:
    r = invoke("digest", site.url_for("/"), "--format", "text")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    assert "found its feed at" in r.output  # type: ignore[attr-defined]
    assert "not a feed" not in r.output  # type: ignore[attr-defined]


def test_opml_import_discovers(tmp_path: Path, site: HTTPServer) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<opml version="2.0"><body>'
        f'<outline text="A blog" xmlUrl="{site.url_for("/")}"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    r = invoke("sources", "import", opml, "--discover")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    assert json.dumps(site.url_for("/feeds/posts.rss")) in r.output  # type: ignore[attr-defined]
