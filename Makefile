# synth — developer entry points. `make demo` and `make test` work on a fresh machine:
# they create .venv, install Python deps into it and Debian packages with apt-get.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_APT_PACKAGES := postgresql prometheus prometheus-pushgateway chromium
# Browser checks drive Debian's Chromium through Playwright (never a downloaded browser).
DEMO_APT_PACKAGES := chromium
BENCH_APT_PACKAGES := nginx prometheus-blackbox-exporter tcpdump

.PHONY: demo test lint typecheck image-check unit integration bench apt-deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,browser]'
	@touch $(STAMP)

apt-deps:
	@bash scripts/apt-deps.sh $(TEST_APT_PACKAGES)

demo: $(STAMP)
	@bash scripts/apt-deps.sh $(DEMO_APT_PACKAGES)
	$(BIN)/synth demo

lint: $(STAMP)
	$(BIN)/ruff check synth tests bench checks
	$(BIN)/ruff format --check synth tests bench checks

typecheck: $(STAMP)
	$(BIN)/mypy

# The container recipe: the wheel the Dockerfile installs builds, and the Dockerfile lints.
image-check: $(STAMP)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .
	$(BIN)/hadolint Dockerfile

test: $(STAMP) apt-deps lint typecheck image-check
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP)
	@bash scripts/apt-deps.sh $(BENCH_APT_PACKAGES)
	bash bench/run_all.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
