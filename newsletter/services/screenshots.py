"""Screenshots of an HTML email as readers see it: a phone (375 px) and a desktop pane
(600 px), light and dark, and at 375 px with every ``<style>`` removed (what a mail
program without media-query support shows), each measured for sideways scrolling and
height.

Chromium (Debian's ``chromium``) is driven through Playwright, both imported only here.
Nothing is fetched: every request the page makes is answered locally (an image with a
plain placeholder of the size its ``<img>`` says, anything else refused), so a shot
never waits on the network. ``newsletter preview --screenshots DIR`` and the screenshot
tests use it; ``unavailable()`` says why it cannot run on this machine (no chromium, no
Playwright), so a demo can skip it with that message.
"""

from __future__ import annotations

import html as html_lib
import re
import shutil
import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsletter.render.mail_layout import PHONE_HEIGHT

CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
)


@dataclass(frozen=True, slots=True)
class View:
    """One way of looking at the email."""

    name: str
    width: int
    dark: bool = False
    styles: bool = True
    """False: every ``<style>`` removed, so no media query applies."""


VIEWS: tuple[View, ...] = (
    View("phone-light", 375),
    View("phone-dark", 375, dark=True),
    View("phone-no-style", 375, styles=False),
    View("desktop-light", 600),
    View("desktop-dark", 600, dark=True),
)


@dataclass(frozen=True, slots=True)
class Shot:
    """What one view measured, and where its picture is ('' when none was written)."""

    view: View
    height: int
    scroll_width: int
    client_width: int
    path: str = ""

    @property
    def overflows(self) -> bool:
        """Whether the page scrolls sideways."""
        return self.scroll_width > self.client_width

    @property
    def screens(self) -> float:
        """The page's height in phone screens (667 px)."""
        return self.height / PHONE_HEIGHT

    def describe(self) -> str:
        """``phone-light  375 px: 3,920 px high (5.9 screens), no sideways scroll``."""
        scroll = (
            f"scrolls sideways ({self.scroll_width} > {self.client_width} px)"
            if self.overflows
            else "no sideways scroll"
        )
        return (
            f"{self.view.name:<15} {self.view.width} px: {self.height:,} px high "
            f"({self.screens:.1f} screens), {scroll}"
        )


def chromium_path() -> str | None:
    """Where chromium is on this machine (``None`` when it is not installed)."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def unavailable() -> str:
    """Why screenshots cannot be taken here ('' when they can)."""
    if chromium_path() is None:
        return "chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install playwright)"
    return ""


def placeholder_png(width: int, height: int) -> bytes:
    """A plain grey-blue PNG of the given size (what a thumbnail shows in a shot)."""
    width, height = max(1, min(width, 2000)), max(1, min(height, 2000))
    row = b"\x00" + bytes((0xC4, 0xD3, 0xE6)) * width
    raw = zlib.compress(row * height, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r'\b(src|width|height)="([^"]*)"', re.IGNORECASE)


def image_sizes(page: str) -> dict[str, tuple[int, int]]:
    """The size each ``<img>`` of a page declares, by its URL."""
    sizes: dict[str, tuple[int, int]] = {}
    for tag in _IMG.findall(page):
        attrs = {k.lower(): v for k, v in _ATTR.findall(tag)}
        try:
            size = (int(attrs["width"]), int(attrs["height"]))
        except (KeyError, ValueError):
            continue
        sizes[html_lib.unescape(attrs.get("src", ""))] = size
    return sizes


@contextmanager
def launch() -> Iterator[Any]:
    """A headless chromium driven by Playwright (closed on exit)."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def view_page(browser: Any, page_html: str, view: View) -> Iterator[Any]:
    """A Playwright page showing the email in one view (closed on exit). Images are
    answered with placeholders of their declared size; every other request is refused."""
    sizes = image_sizes(page_html)

    def answer(route: Any) -> None:
        url = route.request.url
        if route.request.resource_type == "image" or url in sizes:
            w, h = sizes.get(url, (120, 80))
            route.fulfill(status=200, content_type="image/png", body=placeholder_png(w, h))
        else:
            route.abort()

    context = browser.new_context(
        viewport={"width": view.width, "height": PHONE_HEIGHT},
        color_scheme="dark" if view.dark else "light",
    )
    try:
        page = context.new_page()
        page.route("**/*", answer)
        page.set_content(page_html, wait_until="load")
        if not view.styles:
            page.evaluate("document.querySelectorAll('style').forEach(s => s.remove())")
        yield page
    finally:
        context.close()


def measure(page: Any) -> tuple[int, int, int]:
    """(height, scrollWidth, clientWidth) of a page's document, in CSS pixels."""
    m = page.evaluate(
        "() => [document.documentElement.scrollHeight,"
        " document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    return int(m[0]), int(m[1]), int(m[2])


def take(
    browser: Any,
    page_html: str,
    *,
    views: Sequence[View] = VIEWS,
    folder: Path | None = None,
    stem: str = "email",
) -> list[Shot]:
    """Load the email in each view, measure it and (with ``folder``) write a full-page
    PNG named ``<stem>-<view>.png``."""
    shots = []
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    for view in views:
        with view_page(browser, page_html, view) as page:
            height, scroll_width, client_width = measure(page)
            path = ""
            if folder is not None:
                target = folder / f"{stem}-{view.name}.png"
                page.screenshot(path=str(target), full_page=True)
                path = str(target)
            shots.append(Shot(view, height, scroll_width, client_width, path))
    return shots


def screenshots(page_html: str, folder: Path, *, stem: str = "email") -> list[Shot]:
    """Every view of ``VIEWS`` as a PNG under ``folder``, with a fresh browser."""
    with launch() as browser:
        return take(browser, page_html, folder=folder, stem=stem)


__all__ = [
    "VIEWS",
    "Shot",
    "View",
    "chromium_path",
    "image_sizes",
    "launch",
    "measure",
    "placeholder_png",
    "screenshots",
    "take",
    "unavailable",
    "view_page",
]
