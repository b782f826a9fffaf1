"""``newsletter bounces poll`` (a real dovecot mailbox, the password from the
environment), ``bounces read`` (files and standard input) and ``newsletter stats`` (a
table and JSON), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.store.database import Store
from newsletter.store.subscribers import get_subscriber
from tests.factories import BOUNCE_ADDRESS, SECRET, bounce_message, send_for_bounces, write_config
from tests.imap_server import dovecot
from tests.pg import on_both_databases

database_url = on_both_databases()
PEOPLE = ["ada@example.org", "bob@example.org", "cy@example.org"]


@pytest.fixture(autouse=True)
def signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)


def config(tmp_path: Path, database_url: str, **bounces: object) -> str:
    path = write_config(
        tmp_path,
        database_url=database_url,
        bounces={"address": BOUNCE_ADDRESS, **bounces},
    )
    return str(path)


def status(store: Store, email: str) -> str:
    sub = get_subscriber(store, email)
    assert sub is not None
    return sub.status


def test_bounces_poll_reads_the_mailbox(
    runner: CliRunner,
    store: Store,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = {m.recipient: m for m in send_for_bounces(store, tmp_path, PEOPLE)}
    with dovecot(tmp_path / "imap") as imap:
        imap.deliver(bounce_message("dsn-hard", sent["ada@example.org"]))
        imap.deliver(bounce_message("arf-abuse", sent["bob@example.org"], verp="fbl@example.net"))
        cfg = config(
            tmp_path,
            database_url,
            imap_host="127.0.0.1",
            imap_port=imap.port,
            imap_security="none",
            imap_username=imap.user,
        )
        monkeypatch.setenv("NEWSLETTER_BOUNCES_IMAP_PASSWORD", imap.password)
        result = runner.invoke(main, ["bounces", "poll", "--config", cfg])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[-1] == "2 read: 2 recorded"
        again = runner.invoke(main, ["bounces", "poll", "--config", cfg])
        assert again.exit_code == 0 and again.stdout.strip() == "0 read"
        monkeypatch.setenv("NEWSLETTER_BOUNCES_IMAP_PASSWORD", "wrong")
        refused = runner.invoke(main, ["bounces", "poll", "--config", cfg])
    assert refused.exit_code == 1
    assert "the IMAP server refused us" in refused.stderr and "Traceback" not in refused.output
    assert [status(store, p) for p in PEOPLE] == ["bounced", "unsubscribed", "active"]


def test_bounces_poll_without_a_mailbox_says_what_to_set(
    runner: CliRunner, database_url: str, tmp_path: Path
) -> None:
    result = runner.invoke(main, ["bounces", "poll", "--config", config(tmp_path, database_url)])
    assert result.exit_code == 2 and "set bounces.imap_host" in result.stderr


def test_bounces_read_files_and_stdin(
    runner: CliRunner, store: Store, database_url: str, tmp_path: Path
) -> None:
    sent = {m.recipient: m for m in send_for_bounces(store, tmp_path, PEOPLE)}
    dsn = tmp_path / "dsn.eml"
    dsn.write_bytes(bounce_message("dsn-hard", sent["ada@example.org"]))
    cfg = config(tmp_path, database_url)
    result = runner.invoke(
        main,
        ["bounces", "read", "--config", cfg, str(dsn), "-", str(tmp_path / "missing.eml")],
        input=bounce_message("dsn-soft", sent["cy@example.org"]),
    )
    assert result.exit_code == 1  # one file could not be read; the others were
    assert "missing.eml" in result.stderr
    assert result.stdout.splitlines()[-1] == "2 read: 2 recorded"
    assert [status(store, p) for p in PEOPLE] == ["bounced", "active", "active"]


def test_stats_as_a_table_and_as_json(
    runner: CliRunner, store: Store, database_url: str, tmp_path: Path
) -> None:
    cfg = config(tmp_path, database_url)
    empty = runner.invoke(main, ["stats", "--config", cfg])
    assert empty.exit_code == 0 and empty.stdout.strip() == "no editions yet"
    sent = {m.recipient: m for m in send_for_bounces(store, tmp_path, PEOPLE)}
    for name, who in (("dsn-hard", "ada"), ("arf-abuse", "bob")):
        path = tmp_path / f"{name}.eml"
        path.write_bytes(bounce_message(name, sent[f"{who}@example.org"]))
        assert runner.invoke(main, ["bounces", "read", "--config", cfg, str(path)]).exit_code == 0

    table = runner.invoke(main, ["stats", "--config", cfg])
    assert table.exit_code == 0, table.output
    head, row = table.stdout.splitlines()
    assert head.split() == ["id", "digest", "period", *COLUMNS]
    assert row.split() == ["1", "daily", "2030-06-01", "0", "3", "0", "1", "1", "0"]

    as_json = runner.invoke(main, ["stats", "--config", cfg, "--json", "--edition", "2030-06-01"])
    assert as_json.exit_code == 0, as_json.output
    [edition] = json.loads(as_json.stdout)["editions"]
    assert edition["digest"] == "daily" and edition["edition"] == 1
    assert {c: edition[c] for c in COLUMNS} == dict(zip(COLUMNS, [0, 3, 0, 1, 1, 0], strict=True))

    missing = runner.invoke(main, ["stats", "--config", cfg, "--edition", "99"])
    assert missing.exit_code == 1 and "no edition '99'" in missing.stderr
    unknown = runner.invoke(main, ["stats", "--config", cfg, "--digest", "nope"])
    assert unknown.exit_code == 2 and "no digest named 'nope'" in unknown.stderr


COLUMNS = ["queued", "sent", "failed", "bounced", "complained", "unsubscribed"]


def test_bounces_list_shows_what_was_recorded(
    runner: CliRunner, store: Store, database_url: str, tmp_path: Path
) -> None:
    cfg = config(tmp_path, database_url)
    empty = runner.invoke(main, ["bounces", "list", "--config", cfg])
    assert empty.stdout.strip() == "no bounces, complaints or unsubscribes recorded"
    sent = {m.recipient: m for m in send_for_bounces(store, tmp_path, PEOPLE)}
    for name, who in (("dsn-hard", "ada"), ("dsn-soft", "cy")):
        path = tmp_path / f"{name}.eml"
        path.write_bytes(bounce_message(name, sent[f"{who}@example.org"]))
        assert runner.invoke(main, ["bounces", "read", "--config", cfg, str(path)]).exit_code == 0
    listed = runner.invoke(main, ["bounces", "list", "--config", cfg])
    assert listed.exit_code == 0, listed.output
    first, second = listed.stdout.splitlines()
    assert "hard" in first and "ada@example.org  edition 1  5.0.0 smtp; 550" in first
    assert "soft" in second and "cy@example.org  edition 1  4.0.0 smtp; 426" in second
    only = runner.invoke(
        main, ["bounces", "list", "--config", cfg, "--json", "--email", "CY@example.org"]
    )
    [event] = json.loads(only.stdout)["events"]
    assert (event["kind"], event["email"], event["edition_id"]) == ("soft", "cy@example.org", 1)
