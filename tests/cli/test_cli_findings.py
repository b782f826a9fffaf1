"""The findings of issue 13, each as a new user meets it on the command line: real SQLite
files, the file mailer, config files written by the factories (or by `newsletter init`).
Each test failed before its fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.models import Subscriber
from newsletter.store.database import Store
from newsletter.store.subscribers import get_subscriber
from tests.factories import (
    FEEDS,
    db_url,
    digest_config,
    make_entry,
    make_papers,
    make_subscriber,
    seed,
    seeded_store,
    write_config,
)

ENV = {"NEWSLETTER_SECRET_KEY": "test-secret"}
HN = FEEDS / "hackernews-frontpage.rss.xml"


def invoke(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], env=ENV, catch_exceptions=False)


def mails(tmp_path: Path) -> list[EmailMessage]:
    files = sorted((tmp_path / "mail").rglob("*.eml"))
    return [
        message_from_bytes(f.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for f in files
    ]


def at(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    """The CLI's clock reads ``now``."""
    import newsletter.cli.send

    monkeypatch.setattr(newsletter.cli.send, "now_utc", lambda: now)


# -- 1 and 5: CSV import ---------------------------------------------------------------------


def test_csv_import_keeps_multi_word_interests(tmp_path: Path, store: Store) -> None:
    cfg = write_config(tmp_path)
    people = tmp_path / "people.csv"
    people.write_text(
        "email,name,digests,interests\n"
        "ada@example.org,Ada,daily,reinforcement learning;open models\n",
        encoding="utf-8",
    )
    assert invoke("subscribers", "import", people, "--config", cfg).exit_code == 0
    ada = get_subscriber(store, "ada@example.org")
    assert ada is not None and ada.interests == ("reinforcement learning", "open models")


def test_export_import_round_trip_keeps_interests(tmp_path: Path, store: Store) -> None:
    cfg = write_config(tmp_path)
    r = invoke("subscribers", "add", "bo@example.org", "--interest", "open models", "--config", cfg)
    assert r.exit_code == 0
    out = tmp_path / "export.csv"
    assert invoke("subscribers", "export", "-o", out, "--config", cfg).exit_code == 0
    assert invoke("subscribers", "import", out, "--config", cfg).exit_code == 0
    bo = get_subscriber(store, "bo@example.org")
    assert bo is not None and bo.interests == ("open models",)


def test_csv_import_refuses_an_unknown_digest(tmp_path: Path, store: Store) -> None:
    cfg = write_config(tmp_path)
    people = tmp_path / "people.csv"
    people.write_text(
        "email,digests\nada@example.org,weekly\nbo@example.org,daily\n", encoding="utf-8"
    )
    r = invoke("subscribers", "import", people, "--config", cfg)
    assert r.exit_code == 0
    assert "line 2" in r.output and "'weekly' is not configured" in r.output
    assert "imported 1 new" in r.output
    assert get_subscriber(store, "ada@example.org") is None


# -- 2: a manual send of a local-hour digest -------------------------------------------------


def test_manual_send_of_a_local_hour_digest_keys_editions_by_local_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path, digests=[digest_config(local_hour=0)])
    midnight_paris = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    with seeded_store(
        db_url(tmp_path),
        now=midnight_paris - timedelta(hours=1),
        entries=make_papers(4, now=midnight_paris),
        subscribers=[Subscriber("ada@example.org", timezone="Europe/Paris")],
    ) as store:
        # What the daemon's local-hour job did at midnight in Paris.
        import asyncio

        from newsletter.config import load_config
        from newsletter.deliver.mailers import FileMailer
        from newsletter.services.delivery import send_to
        from newsletter.store.subscribers import subscribers_of

        settings = load_config(cfg)
        asyncio.run(
            send_to(
                store,
                settings,
                settings.digest("daily"),
                FileMailer(tmp_path / "mail"),
                subscribers_of(store, "daily"),
                period="2026-12-01",
                now=midnight_paris,
                clock=lambda: midnight_paris,
                secret="test-secret",
            )
        )
        # Five minutes later, more news comes in.
        seed(store, now=midnight_paris + timedelta(minutes=5), entries=[make_entry(99)])
    assert len(mails(tmp_path)) == 1
    at(monkeypatch, midnight_paris + timedelta(minutes=10))
    r = invoke("send", "--config", cfg)
    assert r.exit_code == 0, r.output
    assert "daily 2026-12-01" in r.output
    assert len(mails(tmp_path)) == 1, "the Paris subscriber got a second edition of the day"


# -- 6: no config ----------------------------------------------------------------------------

NEEDS_CONFIG = [
    ["check"],
    ["run"],
    ["fetch"],
    ["send"],
    ["serve"],
    ["preview"],
    ["digest"],
    ["rss"],
    ["subscribers", "list"],
    ["subscribers", "add", "ada@example.org"],
    ["sources", "list"],
    ["db", "status"],
]


@pytest.mark.parametrize("args", NEEDS_CONFIG, ids=" ".join)
def test_no_config_is_the_same_error_everywhere_and_creates_nothing(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from tests.support import newsletter_command, process_env

    data_home = Path(__import__("os").environ["XDG_DATA_HOME"])
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [*newsletter_command(), *args],
        cwd=work,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no config file found" in proc.stderr
    assert "config.toml" in proc.stderr and "newsletter init" in proc.stderr
    assert list(work.iterdir()) == []
    assert not data_home.exists() or not any(data_home.rglob("*"))


def test_a_missing_config_named_on_the_command_line(tmp_path: Path) -> None:
    r = invoke("send", "--config", tmp_path / "nope.toml")
    assert r.exit_code == 2
    assert "no config file found" in r.output
    assert f"newsletter init --config {tmp_path / 'nope.toml'}" in r.output


def test_init_writes_a_starter_config_that_works(tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "newsletter.toml"
    r = invoke("init", "--config", cfg, "--source", FEEDS / "atom-handmade.xml")
    assert r.exit_code == 0, r.output
    text = cfg.read_text(encoding="utf-8")
    assert text.startswith("# newsletter configuration") and "[[digests]]" in text
    assert invoke("check", "--config", cfg).exit_code == 0
    # Never over an existing file without --force.
    again = invoke("init", "--config", cfg)
    assert again.exit_code == 2 and "already exists" in again.output
    assert invoke("init", "--config", cfg, "--force").exit_code == 0


# -- 7: dates --------------------------------------------------------------------------------


def test_subject_and_body_show_the_same_local_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(
        tmp_path, digests=[digest_config(timezone="Europe/Berlin", subject="{title} — {date}")]
    )
    now = datetime(2026, 11, 30, 23, 10, tzinfo=UTC)  # 00:10 on 1 December in Berlin
    seeded_store(
        db_url(tmp_path), now=now, entries=make_papers(3, now=now), subscribers=["ada@example.org"]
    ).close()
    at(monkeypatch, now)
    assert invoke("send", "--config", cfg).exit_code == 0
    [msg] = mails(tmp_path)
    assert str(msg["Subject"]).endswith("2026-12-01")
    for kind in ("plain", "html"):
        body = msg.get_body((kind,))
        assert body is not None
        text = body.get_content()
        assert "Tuesday 1 December 2026" in text and "30 November" not in text


def test_subject_of_a_twice_daily_edition_shows_a_date_not_its_key() -> None:
    from newsletter.render.email import subject_for
    from tests.factories import sample_digest

    subject = subject_for("{title} — {date}", sample_digest(), "2026-12-01T0010")
    assert subject == "Daily Papers — 2026-12-01"


# -- 8: config errors ------------------------------------------------------------------------


def test_every_config_error_at_once_with_did_you_mean(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        "[[sources]]\n"
        'name = "hn"\n'
        'url = "https://news.ycombinator.com/rss"\n'
        "wieght = 2\n"
        "\n"
        "[[digests]]\n"
        'name = "daily"\n'
        'schedul = "0 7 * * *"\n'
        "max_items = 0\n"
        'timezone = "Mars/Olympus"\n',
        encoding="utf-8",
    )
    r = invoke("check", "--config", cfg)
    assert r.exit_code == 2
    out = r.output
    assert "4 errors" in out
    assert f"{cfg}, line 4: sources[0].wieght" in out and "did you mean `weight`?" in out
    assert f"{cfg}, line 8: digests[0].schedul" in out and "did you mean `schedule`?" in out
    assert f"{cfg}, line 9: digests[0].max_items" in out and "max_items = 50" in out
    assert f"{cfg}, line 10: digests[0].timezone" in out and "Europe/Paris" in out


def test_a_toml_syntax_error_shows_the_line_fixed(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[[digests]]\nname = "daily"\ntitle = Morning papers\n', encoding="utf-8")
    r = invoke("check", "--config", cfg)
    assert r.exit_code == 2
    assert "line 3" in r.output and 'title = "Morning papers"' in r.output


# -- 10: options and output ------------------------------------------------------------------


def test_since_takes_a_date(tmp_path: Path) -> None:
    r = invoke("digest", HN, "--since", "2000-01-01")
    assert r.exit_code == 0, r.output
    r = invoke("digest", HN, "--since", "2999-01-01")
    assert r.exit_code == 0 and "Story" not in r.output
    assert invoke("digest", HN, "--since", "yesterday").exit_code == 2


def test_rss_takes_format_like_digest(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    seeded_store(db_url(tmp_path)).close()
    r = invoke("rss", "--format", "atom", "--config", cfg)
    assert r.exit_code == 0, r.output
    assert "<feed" in r.output


def test_subscribers_add_timezone_and_list_as_a_table(tmp_path: Path, store: Store) -> None:
    cfg = write_config(
        tmp_path, digests=[digest_config(topics=[{"name": "Robots", "keywords": ["robot"]}])]
    )
    r = invoke(
        "subscribers",
        "add",
        "ada@example.org",
        "--name",
        "Ada",
        "--timezone",
        "Europe/Paris",
        "--interest",
        "open models",
        "--topic",
        "Robots",
        "--config",
        cfg,
    )
    assert r.exit_code == 0, r.output
    bad = invoke("subscribers", "add", "bo@example.org", "--timezone", "Mars/Base", "--config", cfg)
    assert bad.exit_code == 2 and "--timezone" in bad.output
    r = invoke("subscribers", "list", "--config", cfg)
    header, row = r.stdout.splitlines()
    for column in (
        "email",
        "name",
        "digests",
        "topics",
        "interests",
        "format",
        "zone",
        "hour",
        "status",
    ):
        assert column in header
    for cell in ("ada@example.org", "Ada", "Robots", "open models", "Europe/Paris", "active"):
        assert cell in row
    assert "1 subscriber\n" in r.stderr
    [entry] = json.loads(invoke("subscribers", "list", "--json", "--config", cfg).stdout)
    assert entry["timezone"] == "Europe/Paris" and entry["interests"] == ["open models"]
    assert entry["local_hour"] is None and entry["paused_until"] is None


def test_the_status_column_shows_a_pause_while_it_holds() -> None:
    from newsletter.cli.subscribers import _status

    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    paused = make_subscriber(paused_until=datetime(2026, 12, 24, tzinfo=UTC))
    assert _status(paused, now) == "paused until 2026-12-24 00:00Z"
    assert _status(paused, datetime(2026, 12, 25, tzinfo=UTC)) == "active"
    assert _status(make_subscriber(status="unsubscribed"), now) == "unsubscribed"


def test_counts_read_right_in_the_singular(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    r = invoke("check", "--config", cfg)
    assert "(1 source, 1 digest)" in r.output


# -- 11: send without subscribers ------------------------------------------------------------


def test_send_without_subscribers_keeps_the_edition(tmp_path: Path, store: Store) -> None:
    cfg = write_config(tmp_path)
    now = datetime.now(UTC)
    seed(store, now=now, entries=make_papers(5, now=now))
    r = invoke("send", "--config", cfg)
    assert r.exit_code == 0
    assert "no active subscribers" in r.output and "sent 0" not in r.output
    assert store.last_edition("daily") is None
    invoke("subscribers", "add", "ada@example.org", "--config", cfg)
    r = invoke("send", "--config", cfg)
    assert "sent 1 now" in r.output
    assert len(mails(tmp_path)) == 1
    edition = store.last_edition("daily")
    assert edition is not None and len(store.edition_entries(edition.id)) == 5


# -- sending rules ---------------------------------------------------------------------------


def test_min_items_holds_the_edition_until_enough_news(tmp_path: Path, store: Store) -> None:
    cfg = write_config(tmp_path, digests=[digest_config(min_items=5)])
    now = datetime.now(UTC)
    seed(store, now=now, entries=make_papers(3, now=now), subscribers=["ada@example.org"])
    r = invoke("send", "--config", cfg)
    assert r.exit_code == 0
    assert "3 new items, fewer than min_items = 5" in r.output
    assert store.last_edition("daily") is None and mails(tmp_path) == []
    seed(store, now=now, entries=[make_entry(f"more{i}", source="papers") for i in range(2)])
    r = invoke("send", "--config", cfg)
    assert "sent 1 now" in r.output
    edition = store.last_edition("daily")
    assert edition is not None and len(store.edition_entries(edition.id)) == 5


def test_include_exclude_and_per_source_caps(tmp_path: Path, store: Store) -> None:
    from newsletter.config import DigestConfig
    from newsletter.services.editions import apply_rules

    entries = [
        make_entry(1, source="a", title="A robot learns", hours_ago=1),
        make_entry(2, source="a", title="Robots everywhere", hours_ago=2),
        make_entry(3, source="a", title="Sponsored: robot vacuum", hours_ago=3),
        make_entry(4, source="b", title="Another robot", hours_ago=4),
        make_entry(5, source="b", title="Weather", hours_ago=5),
    ]
    cfg = DigestConfig(
        name="d",
        include=["robot"],
        include_patterns=["^Robots"],
        exclude=["sponsored"],
        max_per_source=1,
    )
    assert [e.id for e in apply_rules(cfg, entries)] == ["1", "4"]
    bad = write_config(tmp_path, digests=[digest_config(exclude_patterns=["(unclosed"])])
    r = invoke("check", "--config", bad)
    assert r.exit_code == 2 and "exclude_patterns" in r.output
