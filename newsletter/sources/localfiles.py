"""Local sources: ``file://`` URLs and plain paths, read as a fetch would read them
(the same results, size cap and one-line reasons)."""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

if TYPE_CHECKING:
    from newsletter.sources.fetch import FetchRequest, FetchResult


def format_size(n: int) -> str:
    """A byte count the way a person says it: ``10 MB``, ``512 kB``, ``100 bytes``."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:g} MB"
    if n >= 1_000:
        return f"{n / 1_000:g} kB"
    return f"{n} bytes"


def too_large(max_bytes: int) -> str:
    """The reason given for a body over the cap."""
    return f"body larger than {format_size(max_bytes)}"


def local_path(url: str) -> Path | None:
    """The file a ``file://`` URL or plain path names; ``None`` for any other scheme."""
    if url[:5].lower() == "file:":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            return None
        return Path(url2pathname(unquote(parts.path)))
    if "://" in url:
        return None
    return Path(url).expanduser()


def outside_roots(path: Path, roots: str | tuple[str, ...] | None) -> str | None:
    """Why ``path`` may not be read (``None`` when it may): local sources are read only
    under ``fetch.local_root`` (``None`` there: anywhere, for library use without
    settings). Symbolic links are followed first, so a link cannot lead out."""
    if roots is None:
        return None
    allowed = (roots,) if isinstance(roots, str) else roots
    try:
        resolved = path.expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return f"cannot resolve the local path {path}"
    if any(resolved.is_relative_to(Path(root)) for root in allowed):
        return None
    where = ", ".join(allowed) or "nowhere"
    return f"local file outside fetch.local_root ({where}): {path}"


def read_file(
    request: FetchRequest,
    path: Path,
    max_bytes: int,
    roots: str | tuple[str, ...] | None = None,
) -> FetchResult:
    """Read a local source (blocking: run it in a thread); refused outside ``roots``
    (``fetch.local_root``, see ``outside_roots``)."""
    from newsletter.sources.fetch import FetchResult

    refused = outside_roots(path, roots)
    if refused is not None:
        return FetchResult(request, "error", error=refused)

    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                return FetchResult(request, "error", error=too_large(max_bytes))
            # Read one byte past the cap: files can grow, and /dev-like files lie about size.
            body = f.read(max_bytes + 1)
    except FileNotFoundError:
        return FetchResult(request, "error", error=f"file not found: {path}")
    except IsADirectoryError:
        return FetchResult(request, "error", error=f"is a directory, not a file: {path}")
    except PermissionError:
        return FetchResult(request, "error", error=f"permission denied: {path}")
    except OSError as exc:
        return FetchResult(request, "error", error=f"could not read {path}: {exc.strerror or exc}")
    if len(body) > max_bytes:
        return FetchResult(request, "error", error=too_large(max_bytes))
    return FetchResult(
        request,
        "ok",
        body=body,
        content_type=mimetypes.guess_type(path.name)[0],
        final_url=request.url,
    )
