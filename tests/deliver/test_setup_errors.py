"""Issue 11, finding 17: an SMTP mistake that retrying cannot fix (implicit TLS against a
plain server, a refused port, a host that does not resolve) fails ``send`` with a clear
message, exit 1; the messages stay queued for when the settings are fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from newsletter.store.database import Store
from newsletter.store.outbox import counts
from tests.cli.test_cli_mail import add, invoke, setup
from tests.conftest import SmtpSink
from tests.factories import db_url
from tests.support import refusing_port


def _send(tmp_path: Path, **smtp: Any) -> Any:
    cfg = setup(tmp_path, **smtp)
    add(cfg, "ada@example.org", "bob@example.org")
    return invoke("send", "--config", str(cfg))


def test_implicit_tls_against_a_plain_server_fails_the_run(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    r = _send(tmp_path, port=smtp_sink.port, security="tls")
    assert r.exit_code == 1, r.output
    assert "TLS handshake" in r.output and "starttls" in r.output
    assert "queued for retry" not in r.output
    assert smtp_sink.recorder.count() == {}


def test_a_refused_port_fails_the_run(tmp_path: Path) -> None:
    r = _send(tmp_path, port=refusing_port())
    assert r.exit_code == 1, r.output
    assert "refused the connection" in r.output and "smtp.port" in r.output
    with Store(db_url(tmp_path)) as store:
        # Nothing was lost: the two messages wait for the next run.
        edition = store.last_edition("daily")
        assert edition is not None
        found = counts(store, edition.id)
        assert found.get("queued", 0) + found.get("retry", 0) == 2
        assert found.get("failed", 0) == found.get("sent", 0) == 0


def test_a_host_that_does_not_resolve_fails_the_run(tmp_path: Path) -> None:
    r = _send(tmp_path, port=25, host="no-such-host.invalid")
    assert r.exit_code == 1, r.output
    assert "cannot be resolved" in r.output


@pytest.mark.parametrize("code", ["421 4.3.2 try later"])
def test_a_transient_refusal_still_retries(tmp_path: Path, smtp_sink: SmtpSink, code: str) -> None:
    smtp_sink.recorder.script.update({"ada@example.org": [code] * 10})
    r = _send(tmp_path, port=smtp_sink.port)
    assert r.exit_code == 0, r.output
    assert "1 queued for retry" in r.output
