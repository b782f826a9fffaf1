"""Build ``debian-bookworm-sections.jsonl``: a labeled grouping set never tuned on.

Usage (on a Debian bookworm machine, once)::

    apt-get update -o Acquire::Languages=en
    apt-cache dumpavail > /tmp/avail.txt
    /usr/lib/apt/apt-helper cat-file \
        /var/lib/apt/lists/*_debian_dists_bookworm_main_i18n_Translation-en.lz4 > /tmp/tr.txt
    python bench/data/build_debian_set.py /tmp/avail.txt /tmp/tr.txt \
        > bench/data/debian-bookworm-sections.jsonl

Each line is one package of a topical Debian section: ``title`` is its short
description, ``abstract`` its long description, ``label`` its ``Section`` (the
package's own metadata). One package per source package (``-dev``/``-doc`` twins
would be near-duplicates), libraries and language modules left out, long
descriptions of at least 200 characters, at most 90 packages per section, 1,000 in
all, drawn with a fixed seed. Not part of the package or its tests.
"""

from __future__ import annotations

import json
import random
import re
import sys

_TOPICAL = """
    science games sound graphics fonts math mail editors database video electronics
    hamradio tex vcs httpd news education shells
"""
TOPICAL = frozenset(_TOPICAL.split())
SKIP = re.compile(
    r"^(lib|python3?-|ruby-|node-|golang-|r-cran-|haskell-|perl-|php-)"
    r"|(-dev|-doc|-dbg|-data|-common|-bin|-utils|-examples|-plugins?)$"
)


def parse(path: str) -> list[dict[str, str]]:
    """Return the stanzas of a Debian control-style file."""
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line == "\n":
                if current:
                    records.append(current)
                current, key = {}, ""
            elif line.startswith(" ") and key:
                current[key] += "\n" + line[1:].rstrip("\n")
            else:
                key, _, value = line.partition(":")
                current[key] = value.strip()
    if current:
        records.append(current)
    return records


def main(avail: str, translations: str) -> None:
    """Print the set as JSON lines."""
    long = {
        t["Description-md5"]: t["Description-en"]
        for t in parse(translations)
        if "Description-en" in t
    }
    seen: set[str] = set()
    by: dict[str, list[dict[str, str]]] = {}
    for r in parse(avail):
        section = r.get("Section", "").split("/")[-1]
        name = r.get("Package", "")
        desc = long.get(r.get("Description-md5", ""), "")
        if section not in TOPICAL or SKIP.search(name) or not desc:
            continue
        source = r.get("Source", name).split()[0]
        if source in seen:
            continue
        title, _, body = desc.partition("\n")
        body = " ".join(x.strip() for x in body.split("\n") if x.strip() != ".")
        if len(body) < 200:
            continue
        seen.add(source)
        by.setdefault(section, []).append(
            {"id": name, "title": title.strip(), "abstract": body, "label": section}
        )
    rng = random.Random(2026)
    out: list[dict[str, str]] = []
    for section in sorted(by):
        items = sorted(by[section], key=lambda p: p["id"])
        rng.shuffle(items)
        out += items[:90]
    rng.shuffle(out)
    for paper in out[:1000]:
        print(json.dumps(paper, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
