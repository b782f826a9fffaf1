"""Optional LLM summaries: item TL;DRs and section summaries from any OpenAI-compatible
chat-completions endpoint (Ollama, llama.cpp, vLLM, OpenAI...). Off by default.

``summarize_digest(digest, cfg, store, api_key=...)`` returns a copy of the digest whose
item and section summaries were written by the model, and an ``LlmReport``. It never
fails because of the model: a timeout, a refused connection, an HTTP error, a body that
is not chat-completions JSON or an empty answer keeps the extractive summary already in
the digest, and the report counts it (the CLI warns once with ``LlmReport.warning()``).

Answers are cached in the ``llm_summaries`` table (in ``store/schema.py``), keyed by
(entry key, model, prompt hash): an entry is summarized once per model and prompt, and a
changed entry text, prompt or length setting asks again. Failures are not cached, so the
next run retries them.

The prompts and the reading of answers are pure, in ``newsletter.services.prompts``.
Model output is untrusted text: ``clean_summary`` drops markup, reasoning blocks,
preambles, bullets, surrounding quotes and control characters, collapses whitespace and
caps the length at whole sentences or words.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from newsletter import __version__
from newsletter.config import LlmConfig
from newsletter.errors import CompletionError
from newsletter.models import Digest, Item, Section
from newsletter.services.prompts import (
    TEMPERATURE,
    Job,
    clean_summary,
    item_job,
    parse_completion,
    section_job,
)
from newsletter.store.database import Store
from newsletter.store.schema import llm_summaries_table

log = logging.getLogger("newsletter")

MAX_RESPONSE_BYTES = 1_000_000
BREAKER_FAILURES = 3
"""After this many failures in a row, the remaining summaries are not requested."""


def api_key_from_env(cfg: LlmConfig, env: Mapping[str, str] | None = None) -> str | None:
    """The API key from the environment variable named by ``cfg.api_key_env``, if set."""
    value = (os.environ if env is None else env).get(cfg.api_key_env, "").strip()
    return value or None


# -- the report ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LlmReport:
    """What one summarizing run did. ``failed_*`` kept their extractive summary."""

    items: int = 0
    sections: int = 0
    requested: int = 0
    """Requests sent to the endpoint (answered or not)."""
    cached: int = 0
    """Summaries read from the cache, without a request."""
    failed_items: int = 0
    failed_sections: int = 0
    first_error: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return self.failed_items + self.failed_sections

    def warning(self) -> str | None:
        """One line for the user when anything failed, else None.

        ``LLM summaries failed for 3 of 20 items: timed out after 20s; used extractive
        summaries``.
        """
        if not self.failed:
            return None
        parts = []
        if self.failed_items:
            parts.append(f"{self.failed_items} of {self.items} items")
        if self.failed_sections:
            parts.append(f"{self.failed_sections} of {self.sections} sections")
        why = f": {self.first_error}" if self.first_error else ""
        return f"LLM summaries failed for {' and '.join(parts)}{why}; used extractive summaries"


# -- the cache ---------------------------------------------------------------------------------


def cached_summaries(store: Store, model: str, jobs: Sequence[Job]) -> dict[tuple[str, str], str]:
    """Cached answers of ``jobs`` for ``model``, by (key, prompt hash)."""
    wanted = {(j.key, j.prompt) for j in jobs}
    found: dict[tuple[str, str], str] = {}
    keys = sorted({k for k, _ in wanted})
    t = llm_summaries_table
    try:
        with store.engine.connect() as conn:
            for i in range(0, len(keys), 400):
                q = sa.select(t.c.entry_key, t.c.prompt, t.c.text).where(
                    t.c.model == model, t.c.entry_key.in_(keys[i : i + 400])
                )
                for key, prompt, text in conn.execute(q):
                    if (key, prompt) in wanted:
                        found[(key, prompt)] = text
    except SQLAlchemyError as exc:
        # The cache only saves requests: without it the summaries are simply asked for.
        log.warning("cannot read the LLM summary cache: %s", exc)
    return found


def store_summaries(
    store: Store, model: str, answers: Mapping[tuple[str, str], str], *, now: datetime
) -> None:
    """Cache answers by (key, prompt hash); a row another run stored meanwhile is kept."""
    if not answers:
        return
    t = llm_summaries_table
    rows = [
        {"entry_key": k, "model": model, "prompt": p, "text": text, "created_at": now}
        for (k, p), text in answers.items()
    ]
    try:
        try:
            with store.engine.begin() as conn:
                conn.execute(sa.insert(t), rows)
        except sa.exc.IntegrityError:
            # A concurrent run cached some of the same summaries: insert the others.
            with store.engine.begin() as conn:
                for row in rows:
                    exists = conn.execute(
                        sa.select(t.c.entry_key).where(
                            t.c.entry_key == row["entry_key"],
                            t.c.model == model,
                            t.c.prompt == row["prompt"],
                        )
                    ).first()
                    if exists is None:
                        conn.execute(sa.insert(t).values(**row))
    except SQLAlchemyError as exc:
        log.warning("cannot write the LLM summary cache: %s", exc)


# -- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Outcome:
    text: str | None
    error: str | None = None
    requested: bool = False


class _Breaker:
    """Stops asking an endpoint that keeps failing (a dead server would otherwise cost a
    full timeout per item)."""

    def __init__(self) -> None:
        self.in_a_row = 0
        self.error: str | None = None

    @property
    def open(self) -> bool:
        return self.in_a_row >= BREAKER_FAILURES

    def record(self, error: str | None) -> None:
        if error is None:
            self.in_a_row = 0
        else:
            self.in_a_row += 1
            self.error = self.error or error


def completions_url(base_url: str) -> str:
    """``{base_url}/chat/completions``."""
    return base_url.rstrip("/") + "/chat/completions"


async def request_summary(
    client: httpx.AsyncClient, job: Job, cfg: LlmConfig, *, api_key: str | None
) -> str:
    """Ask the endpoint for one summary and return it cleaned; ``CompletionError`` with a
    short reason when there is none (timeouts, refused connections, HTTP errors...)."""
    url = completions_url(cfg.base_url)
    payload = {
        "model": cfg.model,
        "messages": [{"role": r, "content": c} for r, c in job.messages],
        "temperature": TEMPERATURE,
        "max_tokens": job.max_tokens,
    }
    headers = {"User-Agent": f"newsletter/{__version__}", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        # One deadline for the whole exchange: httpx's timeouts are per read, and a
        # server trickling bytes would never trip them.
        async with asyncio.timeout(cfg.timeout):
            async with client.stream("POST", url, json=payload, headers=headers) as resp:
                if not resp.is_success:
                    detail = _error_detail(await _read_capped(resp, 64_000))
                    raise CompletionError(f"HTTP {resp.status_code} from {url}{detail}")
                body = await _read_capped(resp, MAX_RESPONSE_BYTES)
    except (TimeoutError, httpx.TimeoutException):
        raise CompletionError(f"timed out after {cfg.timeout:g}s") from None
    except httpx.ConnectError as exc:
        raise CompletionError(f"cannot connect to {cfg.base_url} ({exc})") from None
    except (httpx.HTTPError, OSError) as exc:
        raise CompletionError(f"request to {url} failed ({type(exc).__name__}: {exc})") from None
    text = clean_summary(parse_completion(body), job.max_chars)
    if not text:
        raise CompletionError("the model returned an empty answer")
    return text


async def _read_capped(resp: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise CompletionError(f"the answer is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_detail(body: bytes) -> str:
    """The message of an OpenAI-style error body (``{"error": {"message": ...}}``)."""
    try:
        data: Any = json.loads(body)
        err = data.get("error") if isinstance(data, dict) else None
        msg = err.get("message") if isinstance(err, dict) else err
    except ValueError:
        return ""
    if not isinstance(msg, str):
        return ""
    msg = clean_summary(msg, 200)
    return f": {msg}" if msg else ""


# -- the digest ----------------------------------------------------------------------------


async def summarize_digest(
    digest: Digest,
    cfg: LlmConfig,
    store: Store,
    *,
    api_key: str | None,
    client: httpx.AsyncClient | None = None,
    now: datetime | None = None,
) -> tuple[Digest, LlmReport]:
    """A copy of ``digest`` with item TL;DRs and section summaries written by the model.

    Cached summaries are used without a request; the others are requested at most
    ``cfg.max_concurrency`` at a time, each within ``cfg.timeout`` seconds. Whatever
    fails keeps the summary already in the digest. ``client`` is for tests and for
    callers that share one; otherwise a client is opened and closed here.
    """
    started = time.perf_counter()
    item_jobs = [[item_job(i, cfg) for i in s.items] for s in digest.sections]
    section_jobs = [
        section_job(s, digest.name) if cfg.section_summaries else None for s in digest.sections
    ]
    jobs: dict[tuple[str, str], Job] = {}
    for job in [*(j for row in item_jobs for j in row), *section_jobs]:
        if job is not None:
            jobs.setdefault((job.key, job.prompt), job)

    cached = cached_summaries(store, cfg.model, list(jobs.values()))
    todo = [j for k, j in jobs.items() if k not in cached]
    outcomes: dict[tuple[str, str], _Outcome] = {k: _Outcome(text) for k, text in cached.items()}
    if todo:
        own = client is None
        http = client or httpx.AsyncClient(
            timeout=cfg.timeout,
            limits=httpx.Limits(
                max_connections=cfg.max_concurrency,
                max_keepalive_connections=cfg.max_concurrency,
            ),
        )
        try:
            results = await _run(http, todo, cfg, api_key=api_key)
        finally:
            if own:
                await http.aclose()
        outcomes.update(results)
        answers = {k: o.text for k, o in results.items() if o.text is not None}
        store_summaries(store, cfg.model, answers, now=now or datetime.now(UTC))

    def answer(job: Job | None) -> _Outcome | None:
        return None if job is None else outcomes.get((job.key, job.prompt))

    sections: list[Section] = []
    counts = {"items": 0, "failed_items": 0, "sections": 0, "failed_sections": 0}
    first_error: str | None = None
    for section, row, sjob in zip(digest.sections, item_jobs, section_jobs, strict=True):
        items: list[Item] = []
        for item, ijob in zip(section.items, row, strict=True):
            got = answer(ijob)
            if got is not None:
                counts["items"] += 1
                if got.text is None:
                    counts["failed_items"] += 1
                    first_error = first_error or got.error
            items.append(replace(item, summary=got.text) if got and got.text else item)
        got = answer(sjob)
        summary = section.summary
        if got is not None:
            counts["sections"] += 1
            if got.text is None:
                counts["failed_sections"] += 1
                first_error = first_error or got.error
            summary = got.text or summary
        sections.append(replace(section, items=tuple(items), summary=summary))
    report = LlmReport(
        requested=sum(1 for k in jobs if k not in cached and outcomes[k].requested),
        cached=len(cached),
        first_error=first_error,
        seconds=time.perf_counter() - started,
        **counts,
    )
    if report.failed:
        log.debug("LLM summaries: %s", report)
    return replace(digest, sections=tuple(sections)), report


async def _run(
    client: httpx.AsyncClient, jobs: Sequence[Job], cfg: LlmConfig, *, api_key: str | None
) -> dict[tuple[str, str], _Outcome]:
    gate = asyncio.Semaphore(cfg.max_concurrency)
    breaker = _Breaker()

    async def one(job: Job) -> _Outcome:
        async with gate:
            if breaker.open:
                return _Outcome(None, f"{breaker.error} (gave up after {BREAKER_FAILURES})")
            try:
                text = await request_summary(client, job, cfg, api_key=api_key)
            except CompletionError as exc:
                breaker.record(str(exc))
                return _Outcome(None, str(exc), requested=True)
            breaker.record(None)
            return _Outcome(text, requested=True)

    results = await asyncio.gather(*(one(j) for j in jobs))
    return {(j.key, j.prompt): o for j, o in zip(jobs, results, strict=True)}


def summarize_digest_sync(
    digest: Digest,
    cfg: LlmConfig,
    store: Store,
    *,
    api_key: str | None,
    now: datetime | None = None,
) -> tuple[Digest, LlmReport]:
    """``summarize_digest`` for synchronous callers (the CLI, a digest composer).

    Called from a thread that runs an event loop (the daemon), it runs on its own loop in
    a worker thread, since ``asyncio.run`` cannot nest; async callers should rather await
    ``summarize_digest``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(summarize_digest(digest, cfg, store, api_key=api_key, now=now))
    with ThreadPoolExecutor(1, thread_name_prefix="newsletter-llm") as pool:
        return pool.submit(
            asyncio.run, summarize_digest(digest, cfg, store, api_key=api_key, now=now)
        ).result()


__all__ = [
    "LlmReport",
    "api_key_from_env",
    "clean_summary",
    "summarize_digest",
    "summarize_digest_sync",
]
