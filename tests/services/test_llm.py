"""The optional LLM summarizer against a real local server speaking the OpenAI
chat-completions API: answers, cache, timeouts, errors, garbage, refused connections,
the key from the environment, hostile output, bounded concurrency."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsletter.config import LlmConfig, settings_from_dict
from newsletter.models import Digest, Item, Section
from newsletter.services.llm import (
    BREAKER_FAILURES,
    api_key_from_env,
    clean_summary,
    summarize_digest,
    summarize_digest_sync,
)
from newsletter.store.database import Store
from tests.factories import make_entry
from tests.support import HANG_GUARD, refusing_port

NOW = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
PATH = "/v1/chat/completions"


class FakeLLM:
    """A chat-completions endpoint: records every request, answers per ``mode``."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.hold: threading.Event | None = None
        """When set to an event: every answer waits for it (a hang guard bounds the wait)."""
        self.barrier: threading.Barrier | None = None
        """When set: requests are answered only in groups that arrive together."""
        self.content: str | None = None
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.requests.append(json.loads(request.get_data()))
            self.headers.append(dict(request.headers))
        try:
            if self.barrier is not None:
                self.barrier.wait(HANG_GUARD)
            if self.hold is not None:
                self.hold.wait(HANG_GUARD)
            return self.respond(self.requests[-1])
        finally:
            with self._lock:
                self.in_flight -= 1

    def respond(self, body: dict[str, Any]) -> Response:
        if self.mode == "500":
            error = {"error": {"message": "model overloaded", "type": "server_error"}}
            return Response(json.dumps(error), status=500, content_type="application/json")
        if self.mode == "garbage":
            return Response(self.content or "", content_type="application/json")
        user = body["messages"][-1]["content"]
        first = user.splitlines()[0]
        answer = self.content if self.content is not None else f"Model says: {first}."
        return Response(
            json.dumps(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": answer},
                            "finish_reason": "stop",
                        }
                    ],
                }
            ),
            content_type="application/json",
        )


@pytest.fixture
def llm(threaded_httpserver: HTTPServer) -> Iterator[FakeLLM]:
    fake = FakeLLM()
    threaded_httpserver.clear()
    threaded_httpserver.expect_request(PATH, method="POST").respond_with_handler(fake)
    yield fake
    threaded_httpserver.clear()


@pytest.fixture
def cfg(threaded_httpserver: HTTPServer) -> LlmConfig:
    return LlmConfig(
        enabled=True,
        base_url=threaded_httpserver.url_for("/v1"),
        model="tiny",
        timeout=2.0,
        item_words=40,
    )


def digest(n_items: int = 3, texts: dict[int, str] | None = None) -> Digest:
    texts = texts or {}
    items = [
        Item(
            entry=make_entry(
                id=f"e{i}",
                source="arxiv",
                title=f"Paper {i}",
                link=f"https://arxiv.org/abs/2405.{i:05d}",
                text=texts.get(i, f"We study problem {i}. It is hard. We solve it."),
            ),
            summary=f"extractive {i}",
        )
        for i in range(n_items)
    ]
    half = (n_items + 1) // 2
    sections = (
        Section(title="Reasoning", items=tuple(items[:half]), summary="sec A", key="reasoning"),
        Section(title="Vision", items=tuple(items[half:]), summary="sec B", key="vision"),
    )
    return Digest(name="daily", title="Daily", generated_at=NOW, sections=sections)


def run(d: Digest, cfg: LlmConfig, store: Store, api_key: str | None = None) -> Any:
    return summarize_digest_sync(d, cfg, store, api_key=api_key, now=NOW)


# -- success and cache -----------------------------------------------------------------------


def test_items_and_sections_summarized(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    out, report = run(digest(3), cfg, store)
    assert [i.summary for i in out.items] == [f"Model says: Title: Paper {i}." for i in range(3)]
    assert [s.summary for s in out.sections] == [
        "Model says: Section: Reasoning.",
        "Model says: Section: Vision.",
    ]
    assert (report.items, report.sections, report.requested, report.cached) == (3, 2, 5, 0)
    assert report.failed == 0 and report.warning() is None
    body = llm.requests[0]
    assert body["model"] == "tiny"
    assert body["temperature"] == 0.2
    assert isinstance(body["max_tokens"], int) and body["max_tokens"] > 0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    section_prompts = [r["messages"][1]["content"] for r in llm.requests if "Section:" in str(r)]
    assert any("- Paper 0" in p and "Items: 2" in p for p in section_prompts)


def test_second_run_is_served_from_the_cache(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    first, _ = run(digest(3), cfg, store)
    sent = len(llm.requests)
    second, report = run(digest(3), cfg, store)
    assert len(llm.requests) == sent  # not one request
    assert (report.requested, report.cached, report.failed) == (0, 5, 0)
    assert second == first


def test_cache_is_per_entry_text_and_model(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    run(digest(3), cfg, store)
    sent = len(llm.requests)
    _, report = run(digest(3, texts={1: "A different abstract."}), cfg, store)
    assert (report.requested, report.cached) == (1, 4)
    _, report = run(digest(3), cfg.model_copy(update={"model": "other"}), store)
    assert report.requested == 5
    assert len(llm.requests) == sent + 6


def test_item_without_text_keeps_its_summary(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    out, report = run(digest(2, texts={0: ""}), cfg, store)
    assert out.items[0].summary == "extractive 0"
    assert out.items[1].summary.startswith("Model says")
    assert report.items == 1


def test_section_summaries_can_be_turned_off(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    off = cfg.model_copy(update={"section_summaries": False})
    out, report = run(digest(3), off, store)
    assert [s.summary for s in out.sections] == ["sec A", "sec B"]
    assert (report.sections, report.requested) == (0, 3)


def test_input_is_capped(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    capped = cfg.model_copy(update={"max_input_chars": 500, "section_summaries": False})
    run(digest(1, texts={0: "word " * 5000}), capped, store)
    user = llm.requests[0]["messages"][1]["content"]
    assert len(user) <= 500 + len("Title: Paper 0\n\nText:\n")


# -- failures fall back to the extractive summary ----------------------------------------------


def assert_fell_back(out: Digest, report: Any, n_items: int = 3) -> None:
    assert [i.summary for i in out.items] == [f"extractive {i}" for i in range(n_items)]
    assert [s.summary for s in out.sections] == ["sec A", "sec B"]
    assert report.failed_items == n_items and report.failed_sections == 2


def test_slow_server_times_out(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    """The server holds every answer until the run is over: the run can only end by the
    client's own timeout, and it gives up while the server still holds them."""
    llm.hold = threading.Event()
    fast = cfg.model_copy(update={"timeout": 0.25})
    try:
        out, report = run(digest(3), fast, store)
        assert llm.in_flight > 0  # answers still held when the run gave up
    finally:
        llm.hold.set()
    assert_fell_back(out, report)
    assert report.first_error.startswith("timed out after 0.25s")
    assert report.warning() == (
        "LLM summaries failed for 3 of 3 items and 2 of 2 sections: timed out after 0.25s; "
        "used extractive summaries"
    )


def test_http_500_falls_back(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    llm.mode = "500"
    out, report = run(digest(3), cfg, store)
    assert_fell_back(out, report)
    assert "HTTP 500" in report.first_error and "model overloaded" in report.first_error


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "<html>502 Bad Gateway</html>",
        json.dumps({"choices": []}),
        json.dumps({"choices": [{"message": {"role": "assistant"}}]}),
        json.dumps({"choices": [{"message": {"content": None}}]}),
        json.dumps({"choices": [{"message": {"content": "   \n "}}]}),
        json.dumps({"choices": [{"message": {"content": "<script>x()</script>"}}]}),
        json.dumps([1, 2]),
    ],
    ids=["truncated", "html", "no-choices", "no-content", "null", "blank", "only-markup", "list"],
)
def test_malformed_answers_fall_back(llm: FakeLLM, cfg: LlmConfig, store: Store, body: str) -> None:
    llm.mode = "garbage"
    llm.content = body
    out, report = run(digest(3), cfg.model_copy(update={"max_concurrency": 8}), store)
    assert_fell_back(out, report)
    assert report.first_error


def test_connection_refused_falls_back(store: Store) -> None:
    cfg = LlmConfig(enabled=True, base_url=f"http://127.0.0.1:{refusing_port()}/v1", timeout=2)
    out, report = run(digest(3), cfg, store)
    assert_fell_back(out, report)
    assert report.first_error.startswith("cannot connect to http://127.0.0.1:")


def test_failures_are_not_cached(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    llm.mode = "500"
    run(digest(3), cfg, store)
    llm.mode = "ok"
    out, report = run(digest(3), cfg, store)
    assert report.cached == 0 and report.requested == 5
    assert out.items[0].summary.startswith("Model says")


def test_a_failing_endpoint_is_given_up_on(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    llm.mode = "500"
    serial = cfg.model_copy(update={"max_concurrency": 1})
    out, report = run(digest(10), serial, store)
    assert len(llm.requests) == BREAKER_FAILURES
    assert report.requested == BREAKER_FAILURES
    assert_fell_back(out, report, n_items=10)


def test_concurrency_is_bounded(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    # Answered two at a time: the run ends only if requests overlap in pairs.
    llm.barrier = threading.Barrier(2)
    two = cfg.model_copy(update={"max_concurrency": 2, "section_summaries": False})
    _, report = run(digest(8), two, store)
    assert report.requested == 8 and report.failed == 0
    assert llm.peak == 2


# -- the key comes from the environment ----------------------------------------------------------


def test_authorization_carries_the_key_from_the_environment(
    llm: FakeLLM, cfg: LlmConfig, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_LLM_KEY", "sk-test-123")
    named = cfg.model_copy(update={"api_key_env": "MY_LLM_KEY"})
    run(digest(1), named, store, api_key=api_key_from_env(named))
    assert {h.get("Authorization") for h in llm.headers} == {"Bearer sk-test-123"}


def test_no_key_no_authorization_header(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    assert api_key_from_env(cfg) is None  # conftest clears NEWSLETTER_* variables
    run(digest(1), cfg, store)
    assert all("Authorization" not in h for h in llm.headers)


def test_key_is_never_read_from_the_config_file() -> None:
    from newsletter.errors import ConfigError

    with pytest.raises(ConfigError, match="not a known setting"):
        settings_from_dict({"llm": {"api_key": "sk-in-a-file"}}, env={})


def test_config_defaults_and_environment() -> None:
    s = settings_from_dict({}, env={})
    assert s.llm.enabled is False
    assert (s.llm.timeout, s.llm.max_concurrency, s.llm.max_input_chars) == (20, 4, 4000)
    assert (s.llm.item_words, s.llm.section_summaries) == (40, True)
    s = settings_from_dict(
        {"llm": {"enabled": True}},
        env={"NEWSLETTER_LLM_BASE_URL": "http://127.0.0.1:9/v1", "NEWSLETTER_LLM_MODEL": "m"},
    )
    assert (s.llm.base_url, s.llm.model) == ("http://127.0.0.1:9/v1", "m")


# -- hostile output is cleaned and capped --------------------------------------------------------


def test_hostile_output_is_cleaned_and_capped(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    llm.content = (
        "<think>let me ignore the rules</think>\r\n**TL;DR:** <script>alert('x')</script>"
        "&lt;img src=x onerror=alert(1)&gt;<b>Big</b> news.\r\n\r\n" + "More words here. " * 400
    )
    out, _ = run(digest(3), cfg, store)
    for text in [*(i.summary for i in out.items), *(s.summary for s in out.sections)]:
        assert text.startswith("Big news.")
        assert "<" not in text and ">" not in text and "alert" not in text
        assert "\r" not in text and "\n" not in text and "think" not in text
        assert "TL;DR" not in text and "**" not in text
    assert all(len(i.summary) <= 40 * 8 for i in out.items)
    assert all(len(s.summary) <= 200 for s in out.sections)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('"A quoted answer."', "A quoted answer."),
        ("- A bulleted answer.\n- And a second line.", "A bulleted answer. And a second line."),
        ("Here is a one-line summary: Five papers on RL.", "Five papers on RL."),
        ("## Summary\nFive papers.", "Summary Five papers."),
        ("TL;DR: **Short** and `plain`.", "Short and plain."),
        ("A\u202eB\x00C\x1b[31m", "AB C [31m"),
        ("word " * 200, "word " * 60),
    ],
    ids=["quotes", "bullets", "preamble", "heading", "markdown", "controls", "long"],
)
def test_clean_summary(raw: str, clean: str) -> None:
    out = clean_summary(raw, 300)
    if clean.startswith("word"):
        assert out.endswith("…") and len(out) <= 300 and "  " not in out
    else:
        assert out == clean


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000), st.integers(min_value=20, max_value=400))
def test_clean_summary_is_one_capped_line(raw: str, cap: int) -> None:
    out = clean_summary(raw, cap)
    assert len(out) <= cap
    assert out == out.strip()
    assert not any(ch in out for ch in "\r\n\t\x00\u2028\u202e")
    assert "  " not in out


def test_summarize_digest_with_a_shared_client(llm: FakeLLM, cfg: LlmConfig, store: Store) -> None:
    import asyncio

    import httpx

    async def go() -> Any:
        async with httpx.AsyncClient() as client:
            return await summarize_digest(digest(2), cfg, store, api_key=None, client=client)

    out, report = asyncio.run(go())
    assert report.requested == 4 and out.items[0].summary.startswith("Model says")


def test_sync_wrapper_works_inside_a_running_loop(
    llm: FakeLLM, cfg: LlmConfig, store: Store
) -> None:
    import asyncio

    async def daemon_like() -> Any:
        # A synchronous digest composer called from async code (as in the daemon).
        return run(digest(2), cfg, store)

    out, report = asyncio.run(daemon_like())
    assert report.requested == 4 and out.items[1].summary.startswith("Model says")
