"""Generated RSS 2.0 feeds and a real local HTTP server for them (the ingest bench's source).

``make_feeds(n, per_feed, seed)`` returns ``n`` feed bodies (bytes) of ``per_feed`` items
each: title, link, guid, pubDate, an HTML description of about 600 characters, categories.
The same seed always gives the same bytes. Feeds vary a little the way real ones do: some
use permalink guids and some opaque ones, some wrap the HTML in CDATA and some escape it,
some items carry two or three categories, some feeds have an ``<image>`` or ``<ttl>``.

Run as a script it serves them::

    python bench/feeds.py [--feeds 200] [--entries 50] [--seed 2026] [--port 0]

on ``127.0.0.1`` (a free port unless told), printing ``PORT <n>`` on the first stdout line
once it listens. Paths are ``/feeds/<i>.xml``. Each feed answers with an ``ETag`` and a
``Last-Modified`` and honours ``If-None-Match`` / ``If-Modified-Since`` with ``304``; gzip
when the client accepts it (pre-compressed, so the server costs little CPU). ``/stats``
returns request counts by status as JSON; ``/stats?reset=1`` also zeroes them.
"""

from __future__ import annotations

import argparse
import email.utils
import gzip
import hashlib
import json
import random
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

DEFAULT_FEEDS = 200
DEFAULT_ENTRIES = 50
DEFAULT_SEED = 2026
# Every feed claims this modification time: If-Modified-Since at or after it gets a 304.
LAST_MODIFIED = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)

_WORD_TEXT = (
    "model agent graph sparse latent tensor kernel scheduler compiler cache protocol "
    "retrieval language vision robot policy gradient transformer diffusion benchmark "
    "dataset inference training memory storage network latency throughput consensus "
    "database query index vector embedding search ranking summary release security patch "
    "browser runtime garbage collector allocator thread async stream parser feed digest "
    "newsletter archive editor terminal shell container cluster budget climate energy "
    "battery solar grid market policy election court science biology protein genome"
)
_WORDS = tuple(_WORD_TEXT.split())
_CATEGORIES = (
    "AI",
    "Machine learning",
    "Systems",
    "Databases",
    "Security",
    "Programming",
    "Web",
    "Science",
    "Energy",
    "Policy",
    "Hardware",
    "Open source",
    "Research",
    "Tools",
)
_HOSTS = ("blog", "news", "research", "engineering", "notes", "journal", "weekly", "lab")


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize()


def _description(rng: random.Random, link: str) -> str:
    """About 600 characters of the HTML a blog puts in <description>."""
    parts: list[str] = []
    size = 0
    target = rng.randint(520, 700)
    while size < target:
        kind = rng.random()
        if kind < 0.55:
            text = f"<p>{_sentence(rng, 10, 22)}. {_sentence(rng, 6, 14)}.</p>"
        elif kind < 0.7:
            text = (
                f'<p>{_sentence(rng, 4, 9)} <a href="{link}#s{rng.randint(1, 9)}">'
                f"{_sentence(rng, 2, 4).lower()}</a> {_sentence(rng, 3, 8).lower()}.</p>"
            )
        elif kind < 0.8:
            items = "".join(f"<li>{_sentence(rng, 3, 7)}</li>" for _ in range(rng.randint(2, 4)))
            text = f"<ul>{items}</ul>"
        elif kind < 0.9:
            text = f"<p>{_sentence(rng, 4, 8)} <code>{rng.choice(_WORDS)}()</code>, "
            text += f"<em>{rng.choice(_WORDS)}</em> and <strong>{rng.choice(_WORDS)}</strong>.</p>"
        else:
            text = f"<blockquote><p>{_sentence(rng, 8, 16)}.</p></blockquote>"
        parts.append(text)
        size += len(text)
    return "".join(parts)


def make_feed(index: int, entries: int, seed: int) -> bytes:
    """One RSS 2.0 feed, deterministic in (index, entries, seed)."""
    rng = random.Random(f"{seed}:{index}")
    host = f"{rng.choice(_HOSTS)}{index:03d}.example.org"
    cdata = rng.random() < 0.5
    permalink_guid = rng.random() < 0.6
    title = f"{_sentence(rng, 2, 4)} ({index})"
    newest = LAST_MODIFIED - timedelta(minutes=rng.randint(0, 600))
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n',
        f"<title>{escape(title)}</title>\n<link>https://{host}/</link>\n",
        f"<description>{escape(_sentence(rng, 6, 12))}.</description>\n",
        "<language>en</language>\n",
        f"<lastBuildDate>{email.utils.format_datetime(LAST_MODIFIED)}</lastBuildDate>\n",
        f'<atom:link href="https://{host}/feed.xml" rel="self" type="application/rss+xml"/>\n',
    ]
    if rng.random() < 0.3:
        out.append(f"<ttl>{rng.choice((30, 60, 120))}</ttl>\n")
    if rng.random() < 0.3:
        out.append(
            f"<image><url>https://{host}/logo.png</url><title>{escape(title)}</title>"
            f"<link>https://{host}/</link></image>\n"
        )
    when = newest
    for i in range(entries):
        slug = "-".join(rng.choice(_WORDS) for _ in range(3))
        link = f"https://{host}/{when:%Y/%m}/{slug}-{i}.html"
        item_title = _sentence(rng, 4, 11)
        if rng.random() < 0.1:
            item_title += f" & {rng.choice(_WORDS)} <{rng.choice(_WORDS)}>"
        html = _description(rng, link)
        body = f"<![CDATA[{html}]]>" if cdata else escape(html)
        if permalink_guid:
            guid = f"<guid>{link}</guid>"
        else:
            guid = f'<guid isPermaLink="false">{host}:{seed}:{index}:{i}</guid>'
        cats = "".join(
            f"<category>{escape(c)}</category>"
            for c in rng.sample(_CATEGORIES, rng.choice((1, 1, 2, 3)))
        )
        out.append(
            f"<item>\n<title>{escape(item_title)}</title>\n<link>{link}</link>\n{guid}\n"
            f"<pubDate>{email.utils.format_datetime(when)}</pubDate>\n"
            f"<description>{body}</description>\n{cats}\n</item>\n"
        )
        when -= timedelta(minutes=rng.randint(20, 900))
    out.append("</channel>\n</rss>\n")
    return "".join(out).encode("utf-8")


def make_feeds(
    n: int = DEFAULT_FEEDS, entries: int = DEFAULT_ENTRIES, seed: int = DEFAULT_SEED
) -> list[bytes]:
    """``n`` feed bodies, index order."""
    return [make_feed(i, entries, seed) for i in range(n)]


class _Feed:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.gzipped = gzip.compress(body, compresslevel=6, mtime=0)
        self.etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'


class FeedServer(ThreadingHTTPServer):
    """Serves generated feeds with validators; counts answers by status."""

    daemon_threads = True
    # 200 clients may connect at once (rss2email does not, newsletter's pool may).
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], bodies: list[bytes]) -> None:
        super().__init__(address, _Handler)
        self.feeds = [_Feed(b) for b in bodies]
        self.last_modified = email.utils.format_datetime(LAST_MODIFIED, usegmt=True)
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    def count(self, key: str) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real server
    # Headers and body go out in two writes; with Nagle on, a kept-alive connection waits
    # for the client's delayed ACK (40 ms) before the body: real servers set TCP_NODELAY.
    disable_nagle_algorithm = True
    server: FeedServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: thousands of requests

    def _send(
        self, code: int, headers: dict[str, str], body: bytes = b"", *, count: bool = True
    ) -> None:
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        if count:
            self.server.count(str(code))

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/stats":
            with self.server.lock:
                body = json.dumps(self.server.counts).encode()
                if "reset=1" in query:
                    self.server.counts = {}
            self._send(200, {"Content-Type": "application/json"}, body, count=False)
            return
        feed = self._feed(path)
        if feed is None:
            self._send(404, {"Content-Type": "text/plain"}, b"not found\n")
            return
        validators = {"ETag": feed.etag, "Last-Modified": self.server.last_modified}
        if self._not_modified(feed):
            self._send(304, validators)
            return
        headers = {"Content-Type": "application/rss+xml; charset=utf-8", **validators}
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
            self._send(200, headers, feed.gzipped)
        else:
            self._send(200, headers, feed.body)

    def _feed(self, path: str) -> _Feed | None:
        name = path.removeprefix("/feeds/").removesuffix(".xml")
        if not path.startswith("/feeds/") or not name.isdigit():
            return None
        index = int(name)
        return self.server.feeds[index] if index < len(self.server.feeds) else None

    def _not_modified(self, feed: _Feed) -> bool:
        # RFC 9110: If-None-Match wins when present; If-Modified-Since only without it.
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            return feed.etag in tags or "*" in tags
        ims = self.headers.get("If-Modified-Since")
        if ims:
            try:
                since = email.utils.parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
            if since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            return since >= LAST_MODIFIED
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=DEFAULT_FEEDS)
    parser.add_argument("--entries", type=int, default=DEFAULT_ENTRIES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = FeedServer(("127.0.0.1", args.port), make_feeds(args.feeds, args.entries, args.seed))
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
