# Roomler: `make serve` and `make test` are the whole set-up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SERVE_INSTALLED := $(VENV)/.installed-serve
WEB_DEPS := web/node_modules/.installed
WEB_DIST := src/roomler/web/dist/index.html
WEB_SOURCES := $(shell find web -path web/node_modules -prune -o -type f -print 2>/dev/null)
POSTGRES_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

.PHONY: serve test test-sqlite test-postgres install install-serve web wheel browser lint clean

# Serving needs the package and its runtime dependencies only; the test tools come with
# `make test` (`make install`).
serve: install-serve web
	@$(BIN)/roomler serve

test: install web browser test-sqlite test-postgres

install: $(INSTALLED)
install-serve: $(if $(wildcard $(INSTALLED)),$(INSTALLED),$(SERVE_INSTALLED))

$(BIN)/python:
	python3 -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

$(SERVE_INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	@touch $@

# dist/roomler-<version>-py3-none-any.whl (and the sdist), with the built web client inside.
wheel: install web
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

# The browser client (issue 6) and the mediasoup-client bundle used by the SFU browser tests.
web: $(if $(wildcard web/package.json),$(WEB_DEPS),) $(if $(shell grep -s '"build"' web/package.json),$(WEB_DIST),)

$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && npm ci --silent --no-audit --no-fund
	@touch $@

$(WEB_DIST): $(WEB_DEPS) $(WEB_SOURCES)
	cd web && npm run --silent build

# Debian's Chromium and firefox-esr for the browser tests (never a downloaded browser build), coturn for
# the TURN relay tests, nginx for the HTTPS test (tests/web/test_https.py).
SYSTEM_PACKAGES := $(if $(shell command -v chromium),,chromium) $(if $(shell command -v turnserver),,coturn) \
	$(if $(wildcard /usr/sbin/nginx),,nginx) \
	$(if $(wildcard /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf),,fonts-noto-color-emoji) $(if $(shell command -v firefox-esr),,firefox-esr)
browser:
	@if [ -n "$(strip $(SYSTEM_PACKAGES))" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	fi

test-sqlite: install
	$(BIN)/pytest -q $(PYTEST_ARGS)

# The same suite again on PostgreSQL, minus the tests that never touch a database.
test-postgres: install
	@if $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2)" 2>/dev/null; then \
		ROOMLER_TEST_DATABASE=$(POSTGRES_URL) $(BIN)/pytest -q -m "not browser and not nodb" $(PYTEST_ARGS); \
	else \
		echo "!!!!! PostgreSQL is not answering on 127.0.0.1:5432: the PostgreSQL test run is SKIPPED !!!!!"; \
	fi

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) web/node_modules src/roomler/web/dist data
