"""config/example.toml is the settings model written out: every setting is there (set, or
commented out as ``# key = value``), and every value shown is the default, except the
illustrative ones (names, addresses, titles, topics, outputs)."""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from newsletter.config import Settings, settings_from_dict

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "example.toml"

COMMENTED = re.compile(r"^#\s?((?:\[{1,2}[a-z_.]+\]{1,2})|(?:[a-z_]+\s*=\s*\S.*))$")

ILLUSTRATIVE = {
    "sources": {"name", "url", "kind", "weight", "title"},
    "digests": {
        *("name", "title", "description", "link", "since", "deadline", "local_hour"),
        "max_per_source",
        "note",
    },
    "digests.ranking": set(),
    "digests.topics": {"name", "keywords", "patterns"},
    "digests.outputs": {"markdown", "html", "text", "rss", "atom"},
    "mail": {"reply_to", "unsubscribe_address", "logo_url"},
    "smtp": {"username", "rate_limit"},
    "fetch": {"local_root"},
    "bounces": {"address", "imap_host", "imap_username", "processed_folder"},
    "": {"database_url", "template_dir"},
}
"""Settings whose example value is a sample, not the default (by table)."""

NOT_IN_FILE = {"path", "password", "imap_password", "webhook_secret", "mailgun_signing_key"}
"""Not settings of the file: where the settings came from; the SMTP password and the
bounce secrets (environment only)."""


def uncommented() -> dict[str, Any]:
    """The example with every commented-out setting and table switched on."""
    lines = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = COMMENTED.match(line.strip())
        lines.append(m.group(1) if m else line)
    return tomllib.loads("\n".join(lines))


def model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = model_of(arg)
        if found is not None:
            return found
    return None


def walk(
    model: type[BaseModel], data: dict[str, Any], table: str, out: list[str], complete: bool = True
) -> None:
    """Missing settings (the first of an array of tables shows them all) and non-default
    values, as messages."""
    for name, info in model.model_fields.items():
        if name in NOT_IN_FILE:
            continue
        where = f"{table}.{name}" if table else name
        if name not in data:
            if complete:
                out.append(f"{where} is missing")
            continue
        value = data[name]
        inner = model_of(info.annotation)
        if inner is not None:
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                walk(inner, item, where, out, complete=complete and i == 0)
            continue
        if name in ILLUSTRATIVE.get(table, set()):
            continue
        default = info.get_default(call_default_factory=True)
        shown = tuple(value) if isinstance(value, list) else value
        if shown != default and not (
            isinstance(default, float) and isinstance(shown, int) and shown == default
        ):
            out.append(f"{where} = {value!r}, but the default is {default!r}")


def test_example_config_is_valid() -> None:
    settings_from_dict(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")), env={})
    settings_from_dict(uncommented(), env={})


def test_example_config_shows_every_setting_with_its_default() -> None:
    problems: list[str] = []
    walk(Settings, uncommented(), "", problems)
    assert problems == []
