# Everything the project needs is installed by these targets: a fresh machine needs only
# Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@# pip byte-compiles what it installs, but not an editable checkout: without this, a
	@# shell with PYTHONDONTWRITEBYTECODE compiles every module on every command.
	$(BIN)/python -m compileall -q newsletter
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/newsletter fetch --config config/demo.toml
	$(BIN)/newsletter digest --config config/demo.toml --no-fetch
	$(BIN)/newsletter subscribers import config/demo-subscribers.csv --config config/demo.toml
	$(BIN)/newsletter send --config config/demo.toml
	@# The email as readers see it (phone and desktop, light and dark); without chromium
	@# it says so and the demo goes on.
	$(BIN)/newsletter preview --config config/demo.toml --screenshots out/screenshots

test: $(STAMP)
	bash .ci/ensure-browser
	bash .ci/ensure-postgres
	bash .ci/ensure-dovecot
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff format --check newsletter tests bench
	$(BIN)/ruff check newsletter tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format newsletter tests bench
	$(BIN)/ruff check --fix newsletter tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) out build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find newsletter -name __pycache__ -type d -prune -exec rm -rf {} +
