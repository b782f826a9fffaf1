"""The web archive: past editions as pages and as RSS/Atom feeds of editions.

Routes::

    GET  /archive/               every digest's past editions
    GET  /archive/{digest}/      one digest's past editions
    GET  /archive/{digest}/{period}   one edition
    GET  /{digest}/feed.xml      RSS 2.0 of the editions; /{digest}/atom.xml: Atom

An edition's page is built by ``services.editions.archived_edition`` (the same digest
its email was built from) and cached: editions never change.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from newsletter.config import DigestConfig, Settings
from newsletter.render.archive import ArchivedEdition, FeedMeta, archive_index, editions_feed
from newsletter.services.digests import from_name
from newsletter.store.database import Store

if TYPE_CHECKING:
    from newsletter.serve.web import WebApp

FEED_EDITIONS = 30
"""Editions in a feed (the newest)."""
_CACHE_SIZE = 64


@dataclass
class EditionArchive:
    """The configured digests' past editions, rendered on demand (an LRU cache)."""

    settings: Settings
    store: Store
    env: jinja2.Environment
    _cache: OrderedDict[int, ArchivedEdition] = field(default_factory=OrderedDict)

    def digest_cfg(self, name: str) -> DigestConfig | None:
        digests = self.settings.digests or (self.settings.digest(None),)
        return next((d for d in digests if d.name == name), None)

    def edition(self, digest: str, period: str) -> ArchivedEdition | None:
        """An edition's page (``None`` when there is no such edition)."""
        from newsletter.services.editions import archived_edition

        cfg = self.digest_cfg(digest)
        if cfg is None:
            return None
        edition = self.store.edition(digest, period)
        if edition is None:
            return None
        if edition.id in self._cache:
            self._cache.move_to_end(edition.id)
            return self._cache[edition.id]
        item = archived_edition(self.store, self.settings, cfg, edition, env=self.env)
        self._cache[edition.id] = item
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return item

    def feed(self, digest: str, fmt: str) -> bytes | None:
        """The editions feed of a configured digest (``None`` for an unknown one)."""
        cfg = self.digest_cfg(digest)
        if cfg is None or fmt not in ("rss", "atom"):
            return None
        items = [
            a
            for e in self.store.editions(digest, limit=FEED_EDITIONS)
            if (a := self.edition(e.digest, e.period)) is not None
        ]
        base_url = self.settings.web.base_url.rstrip("/")
        author = from_name(self.settings)
        meta = FeedMeta(cfg.name, cfg.title, cfg.description, base_url, author=author)
        return editions_feed(meta, items, "rss" if fmt == "rss" else "atom")


def archive_routes(app: WebApp) -> list[Route]:
    """The archive's routes in the web app (its pages, headers and error pages)."""
    from newsletter.serve.web import SECURITY_HEADERS

    archive = app.archive

    async def archive_all(request: Request) -> Response:
        titles = {d.name: d.title for d in app.digests}
        editions = await asyncio.to_thread(app.store.editions, None, limit=1000)
        return app.page("archive.html.j2", groups=archive_index(editions, titles), one=None)

    async def archive_digest(request: Request) -> Response:
        name = request.path_params["digest"]
        cfg = app.digest_cfg(name)
        if cfg is None:
            raise HTTPException(404)
        editions = await asyncio.to_thread(app.store.editions, name, limit=1000)
        return app.page(
            "archive.html.j2", groups=archive_index(editions, {name: cfg.title}), one=cfg
        )

    async def archive_edition_page(request: Request) -> Response:
        item = await asyncio.to_thread(
            archive.edition, request.path_params["digest"], request.path_params["period"]
        )
        if item is None:
            raise HTTPException(404)
        return HTMLResponse(item.html, headers=SECURITY_HEADERS)

    def feed_endpoint(fmt: str, media: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            data = await asyncio.to_thread(archive.feed, request.path_params["digest"], fmt)
            if data is None:
                raise HTTPException(404)
            return Response(
                data,
                media_type=media,
                headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=300"},
            )

        return endpoint

    return [
        Route("/archive/", archive_all, methods=["GET"]),
        Route("/archive", lambda r: RedirectResponse(app.url("/archive/"), 308), methods=["GET"]),
        Route("/archive/{digest}/", archive_digest, methods=["GET"]),
        Route("/archive/{digest}/{period}", archive_edition_page, methods=["GET"]),
        Route("/{digest}/feed.xml", feed_endpoint("rss", "application/rss+xml"), methods=["GET"]),
        Route("/{digest}/atom.xml", feed_endpoint("atom", "application/atom+xml"), methods=["GET"]),
    ]


__all__ = ["FEED_EDITIONS", "EditionArchive", "archive_routes"]
