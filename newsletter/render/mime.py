"""The wire form of a message's parts (pure): quoted-printable bodies split into
pieces, so the personal parts of a shared rendering are filled in per message without
encoding the rest again, and headers written as bytes (``render.message`` uses them)."""

from __future__ import annotations

import binascii
import functools
from email.header import Header


def chunks(body: str, marks: tuple[str, ...]) -> tuple[bytes | str, ...]:
    parts = body.split("\r\n")
    lines = [p + "\r\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    out: list[bytes | str] = []
    static: list[str] = []
    for line in lines:
        if any(m in line for m in marks):
            if static:
                out.append(qp("".join(static)))
                static = []
            out.append(line)
        else:
            static.append(line)
    if static:
        out.append(qp("".join(static)))
    return tuple(out)


def fill(chunks: tuple[bytes | str, ...], values: dict[str, str]) -> bytes:
    out: list[bytes] = []
    for c in chunks:
        if isinstance(c, bytes):
            out.append(c)
        else:
            for k, v in values.items():
                c = c.replace(k, v)
            out.append(qp(c))
    return b"".join(out)


def header(name: str, value: str) -> bytes:
    # Every value reaching here is ASCII without CR/LF except the folds made on purpose.
    return f"{name}: {value}\r\n".encode("ascii")


@functools.lru_cache(maxsize=64)
def encoded_text(name: str, text: str) -> str:
    charset = "us-ascii" if text.isascii() else "utf-8"
    return Header(text, charset, header_name=name).encode(linesep="\r\n")


def qp(text: str) -> bytes:
    return binascii.b2a_qp(text.encode("utf-8"), istext=True)


def part(content_type: str, body: bytes) -> bytes:
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii") + body


__all__ = ["chunks", "encoded_text", "fill", "header", "part", "qp"]
