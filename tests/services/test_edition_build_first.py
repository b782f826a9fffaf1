"""Issue 11, finding 1: an edition is recorded only once its digest could be built, so a
digest that cannot be built is not left behind for every later run to trip over."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import newsletter.summarize.digest as digest_module
from newsletter.config import load_config
from newsletter.services.editions import edition_digest, plan_edition
from newsletter.store.database import Store
from tests.factories import make_papers, seed, write_config


def test_no_edition_is_recorded_when_its_digest_cannot_be_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_config(write_config(tmp_path))
    cfg = settings.digest("daily")
    now = datetime.now(UTC)
    with Store(settings.database_url) as store:
        seed(store, now=now, entries=make_papers(5, now=now))

        def explode(*args: object, **kwargs: object) -> None:
            raise MemoryError("Unable to allocate 74.5 GiB")

        monkeypatch.setattr(digest_module, "merge_duplicates", explode)
        with pytest.raises(MemoryError):
            plan_edition(store, settings, cfg, now=now)
        assert store.last_edition("daily") is None
        monkeypatch.undo()
        plan = plan_edition(store, settings, cfg, now=now)
        assert plan.created and plan.edition is not None
        # The digest built to plan it is the one sent.
        assert edition_digest(cfg, plan, sources={}) is plan.digest
        assert plan.digest is not None and plan.digest.item_count >= 1


def test_an_edition_records_at_most_the_candidate_caps(tmp_path: Path) -> None:
    settings = load_config(
        write_config(
            tmp_path,
            digests=[{"name": "daily", "max_candidates": 8, "max_candidates_per_source": 6}],
        )
    )
    cfg = settings.digest("daily")
    now = datetime.now(UTC)
    with Store(settings.database_url) as store:
        seed(store, now=now, entries=make_papers(20, now=now))
        plan = plan_edition(store, settings, cfg, now=now)
        assert plan.edition is not None
        assert len(store.edition_entries(plan.edition.id)) == 6
        assert plan.dropped == 14
