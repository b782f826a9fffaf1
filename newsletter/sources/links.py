"""Links as readers should get them: absolute, canonical (default ports, fragments and
tracking parameters removed), and only of schemes that are safe to follow.

Pure string functions: none raises on hostile input."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "mc_cid",
        "mc_eid",
        "ref",
        "ref_src",
        "ref_url",
        "igshid",
        "igsh",
        "_hsenc",
        "_hsmi",
        "__hssc",
        "__hstc",
        "__hsfp",
        "hsctatracking",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "vero_conv",
        "wt.mc_id",
        "s_cid",
        "rb_clickid",
        "spm",
    }
)
"""Query parameters that only identify a click, never the page (matched case-insensitively,
plus every ``utm_*`` and the values in :data:`TRACKING_VALUES`)."""

TRACKING_VALUES: dict[str, tuple[str, ...]] = {
    # Medium tags every feed link "?source=rss----<feed id>---4" (or "rss-<user>------2");
    # other values of "source" can select content, so only the feed's are dropped.
    "source": ("rss",),
}
"""Parameters that are tracking only when their value starts with one of these prefixes
(matched case-insensitively)."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
# urljoin is slow and leaves absolute http(s) URLs as they are: skip it for those.
ABSOLUTE_URL = re.compile(r"^https?://", re.IGNORECASE)
# An absolute http(s) URL that canonical_link would return unchanged: lowercase scheme and
# host, no port, user, query or fragment, only ASCII URL characters in the path.
_CLEAN_URL = re.compile(
    r"https?://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?"
)
# An absolute http(s) URL with nothing a browser or urlsplit would strip, squeeze or
# reject (whitespace, control characters, brackets, non-ASCII): kept as it is.
PLAIN_ABSOLUTE_URL = re.compile(r"https?://[\x21-\x5a\x5c\x5e-\x7e]*", re.IGNORECASE)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _is_tracking(param: str) -> bool:
    """Whether one ``key=value`` pair of a query only tracks the click."""
    key, _, value = param.partition("=")
    k = unquote_plus(key).lower()
    if k.startswith("utm_") or k in TRACKING_PARAMS:
        return True
    prefixes = TRACKING_VALUES.get(k)
    return prefixes is not None and unquote_plus(value).lower().startswith(prefixes)


def strip_tracking(url: str) -> str:
    """``url`` without its tracking parameters (see :data:`TRACKING_PARAMS`); everything
    else, fragment included, is kept as written. For links inside content, where
    :func:`canonical_link`'s other changes are not wanted."""
    query_at = url.find("?")
    if query_at < 0:
        return url
    end = url.find("#", query_at)
    end = len(url) if end < 0 else end
    params = url[query_at + 1 : end].split("&")
    kept = [p for p in params if p and not _is_tracking(p)]
    if len(kept) == len(params):
        return url
    return url[:query_at] + ("?" + "&".join(kept) if kept else "") + url[end:]


def canonical_link(url: str, base: str | None = None) -> str:
    """The canonical form of ``url``: resolved against ``base``, scheme and host lowercased,
    default port, fragment and tracking parameters dropped, other parameters kept in order.

    Only ``http`` and ``https`` links survive: any other scheme (``javascript:``,
    ``data:``, ``file:``, in any case, after any whitespace or control characters), a
    relative link without a base and anything that cannot be parsed give ``""``.
    """
    stripped = url.strip() if isinstance(url, str) else ""
    if not stripped:
        return ""
    clean = _CLEAN_URL.fullmatch(stripped)
    if clean:
        # Most feed links are already canonical; splitting and rebuilding them would only
        # return the same text (with "/" for an empty path).
        return stripped if clean.group(1) else stripped + "/"
    try:
        joined = (
            urljoin(base.strip(), stripped)
            if base and not ABSOLUTE_URL.match(stripped)
            else stripped
        )
        parts = urlsplit(joined)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            # javascript:, data:, file:, mailto: ... are not links to a story.
            return ""
        host = parts.hostname or ""
        if not host or _CONTROL.search(joined):
            return ""
        if ":" in host:  # IPv6 literal: urlsplit removed the brackets
            host = f"[{host}]"
        port = parts.port
        netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
        if parts.username is not None:
            userinfo = parts.username + (f":{parts.password}" if parts.password else "")
            netloc = f"{userinfo}@{netloc}"
        # Keep the raw text of kept parameters: re-encoding would change links that work.
        kept = [p for p in parts.query.split("&") if p and not _is_tracking(p)]
        return urlunsplit((scheme, netloc, parts.path or "/", "&".join(kept), ""))
    except (ValueError, TypeError, UnicodeError):
        return ""
