"""Personal digests: a subscriber's chosen topics restrict what they receive (through
`newsletter send` and the file mailer, on a real SQLite database), subscribers with the
same preferences share one rendering, and a topic that is not configured is refused."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from newsletter.cli import main
from newsletter.config import load_config
from newsletter.deliver.loop import deliver_edition
from newsletter.deliver.mailers import MemoryMailer
from newsletter.models import Digest
from newsletter.render.email import ContentKey
from newsletter.services.editions import composer_for, plan_edition
from newsletter.store import outbox
from newsletter.store.database import Store
from tests.factories import (
    db_url,
    digest_config,
    make_entry,
    make_subscriber,
    seed,
    seeded_store,
    write_config,
)

SECRET = {"NEWSLETTER_SECRET_KEY": "test-secret", "NEWSLETTER_SMTP_PASSWORD": ""}
KINDS = {
    "quantum": ("Quantum error correction", "qubits and quantum codes on noisy hardware"),
    "robots": ("Robotics grasping", "robotics policies for arms that pick things up"),
    "other": ("Compiler passes", "register allocation and loop unrolling in compilers"),
}
ROBOTS = "Robots, arms & hands"


TOPICS = [{"name": "Quantum", "keywords": ["quantum"]}, {"name": ROBOTS, "keywords": ["robotics"]}]


def setup(tmp: Path, *more_topics: dict[str, Any]) -> Path:
    """Three papers of each kind in the database; a config whose digest has the topics
    Quantum and ROBOTS (and ``more_topics``)."""
    now = datetime.now(UTC)
    entries = [
        make_entry(
            f"{kind}-{i}",
            source="papers",
            title=f"{title} {i}",
            link=f"https://example.org/{kind}/{i}",
            hours_ago=i,
            now=now,
            text=f"{text} (part {i}).",
        )
        for kind, (title, text) in KINDS.items()
        for i in range(3)
    ]
    seeded_store(db_url(tmp), now=now, entries=entries).close()
    return write_config(tmp, digests=[digest_config(topics=[*TOPICS, *more_topics])])


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), env=SECRET, catch_exceptions=False)


def kinds_in(data: bytes) -> set[str]:
    msg = message_from_bytes(data, policy=policy.default)
    text = "".join(
        part.get_content() for part in msg.walk() if part.get_content_maintype() == "text"
    )
    return set(re.findall(r"https://example\.org/(\w+)/\d", text))


def test_subscribers_receive_only_the_topics_they_chose(tmp_path: Path) -> None:
    cfg = str(setup(tmp_path))
    for args in (
        ("quantum@example.org", "--topic", "Quantum"),
        ("robots@example.org", "--topic", ROBOTS),
        ("both@example.org", "--topic", "Quantum", "--topic", ROBOTS),
        ("all@example.org",),
    ):
        r = invoke("subscribers", "add", *args, "--config", cfg)
        assert r.exit_code == 0, r.output
    listed = json.loads(invoke("subscribers", "list", "--json", "--config", cfg).stdout)
    assert [";".join(s["topics"]) or "*" for s in listed] == [
        "Quantum",
        ROBOTS,
        f"Quantum;{ROBOTS}",
        "*",
    ]
    r = invoke("send", "--config", cfg)
    assert r.exit_code == 0, r.output
    assert "sent 4 now" in r.output
    got = {p.stem: kinds_in(p.read_bytes()) for p in (tmp_path / "mail").rglob("*.eml")}
    assert got == {
        "quantum@example.org": {"quantum"},
        "robots@example.org": {"robots"},
        "both@example.org": {"quantum", "robots"},
        "all@example.org": {"quantum", "robots", "other"},
    }


def test_same_preferences_share_one_rendering(tmp_path: Path) -> None:
    settings = load_config(setup(tmp_path))
    cfg = settings.digest("daily")
    now = datetime.now(UTC)
    people = [
        ("ada@example.org", ("Quantum",), ("qubits", "codes")),
        ("bob@example.org", ("Quantum",), ("codes", "qubits")),
        ("carol@example.org", (ROBOTS,), ("codes", "qubits")),
    ]
    with Store(settings.database_url) as store:
        subs = seed(
            store,
            now=now,
            subscribers=[make_subscriber(e, topics=t, interests=i) for e, t, i in people],
        )
        plan = plan_edition(store, settings, cfg, now=now)
        assert plan.edition is not None
        composer = composer_for(store, settings, cfg, plan, secret="k")
        built: list[ContentKey] = []
        build = composer.digest_for

        def counting(key: ContentKey) -> Digest:
            built.append(key)
            return build(key)

        composer.digest_for = counting
        outbox.enqueue(store, plan.edition.id, subs, now=now)
        mailer = MemoryMailer()
        report = asyncio.run(
            deliver_edition(
                store,
                plan.edition.id,
                mailer,
                composer,
                clock=lambda: datetime.now(UTC),
            )
        )
        assert outbox.counts(store, plan.edition.id)["sent"] == 3, report
    assert built == [
        ContentKey(("codes", "qubits"), ("Quantum",), "html"),
        ContentKey(("codes", "qubits"), (ROBOTS,), "html"),
    ]
    assert len(composer.renders) == 2
    got = {m.recipient: kinds_in(m.data) for m in mailer.messages}
    assert got == {
        "ada@example.org": {"quantum"},
        "bob@example.org": {"quantum"},
        "carol@example.org": {"robots"},
    }


def test_an_unknown_topic_is_a_usage_error_naming_the_valid_ones(tmp_path: Path) -> None:
    cfg = str(setup(tmp_path))
    r = invoke("subscribers", "add", "ada@example.org", "--topic", "Quantom", "--config", cfg)
    assert r.exit_code == 2
    assert "'Quantom'" in r.output and f"Quantum, {ROBOTS}" in r.output
    assert json.loads(invoke("subscribers", "list", "--json", "--config", cfg).stdout) == []
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("email,topics\nada@example.org,Quantum\nbob@example.org,Quantom\n")
    r = invoke("subscribers", "import", str(csv_file), "--config", cfg)
    assert r.exit_code == 0
    assert "line 3" in r.output and "'Quantom'" in r.output and "imported 1 new" in r.output


def test_no_email_when_the_chosen_topics_have_nothing_this_time(tmp_path: Path) -> None:
    cfg_path = setup(tmp_path, {"name": "Astronomy", "keywords": ["telescope"]})
    cfg = str(cfg_path)
    for args in (("stars@example.org", "--topic", "Astronomy"), ("all@example.org",)):
        r = invoke("subscribers", "add", *args, "--config", cfg)
        assert r.exit_code == 0, r.output
    r = invoke("send", "--config", cfg)
    assert r.exit_code == 0, r.output
    assert "1 suppressed" in r.output
    assert {p.stem for p in (tmp_path / "mail").rglob("*.eml")} == {"all@example.org"}
    settings = load_config(cfg_path)
    with Store(settings.database_url) as store:
        edition = store.last_edition("daily")
        assert edition is not None
        rows = {row.email: row for row in outbox.rows(store, edition.id)}
    assert rows["stars@example.org"].state == "suppressed"
    assert rows["stars@example.org"].last_error == "nothing in the chosen topics this time"
    assert rows["all@example.org"].state == "sent"
    # A second send for the same period sends nothing new and keeps the suppression.
    again = invoke("send", "--config", cfg)
    assert again.exit_code == 0 and "sent 0 now" in again.output
