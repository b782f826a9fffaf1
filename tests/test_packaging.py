"""The wheel ships every package folder (issue 13, finding 13: setuptools warned about
``newsletter.templates.web``, a folder of data the packages list did not name)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "newsletter").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    folders |= {
        "newsletter.templates"
        + "".join(f".{part}" for part in d.relative_to(ROOT / "templates").parts)
        for d in [ROOT / "templates", *(ROOT / "templates").rglob("*")]
        if d.is_dir() and "__pycache__" not in d.parts
    }
    assert folders <= listed, sorted(folders - listed)
