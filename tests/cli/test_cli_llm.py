"""`newsletter digest` with the optional LLM summarizer, against a local server that
speaks the OpenAI chat-completions API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsletter.cli import main
from tests.factories import FEEDS, digest_config, source_config, write_config
from tests.support import refusing_port


def _config(tmp_path: Path, base_url: str) -> Path:
    return write_config(
        tmp_path,
        name="c.toml",
        sources=[source_config("arxiv", FEEDS / "arxiv-rss-cs.AI.xml")],
        digests=[digest_config("d", title="D", group_by="none")],
        mail=None,
        web=None,
        llm={"enabled": True, "base_url": base_url, "model": "tiny", "timeout": 2},
    )


def test_digest_uses_model_summaries_and_caches_them(
    runner: CliRunner, httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_LLM_API_KEY", "k-123")
    calls: list[str | None] = []

    def handler(request: Request) -> Response:
        calls.append(request.headers.get("Authorization"))
        body = {"choices": [{"message": {"role": "assistant", "content": "A model TL;DR."}}]}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(handler)
    cfg = _config(tmp_path, httpserver.url_for("/v1"))
    first = runner.invoke(main, ["digest", "--config", str(cfg), "--format", "markdown"])
    assert first.exit_code == 0, first.output
    assert first.stdout.count("A model TL;DR.") == 4  # 3 items + 1 section summary
    assert calls and all(c == "Bearer k-123" for c in calls)
    n = len(calls)
    second = runner.invoke(main, ["digest", "--config", str(cfg), "--no-fetch"])
    assert second.exit_code == 0
    assert second.stdout.count("A model TL;DR.") == 4
    assert len(calls) == n  # cached in the database: no new request


def test_unreachable_model_falls_back_with_one_warning(runner: CliRunner, tmp_path: Path) -> None:
    cfg = _config(tmp_path, f"http://127.0.0.1:{refusing_port()}/v1")  # connection refused
    result = runner.invoke(main, ["digest", "--config", str(cfg), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("LLM summaries failed") == 1
    assert "used extractive summaries" in result.stderr
    # The extractive summary of a paper states its contribution, not its background.
    assert "we propose Math Takes Two" in result.stdout
