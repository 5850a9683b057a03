# The two commands of the README. Each does all its own set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
REDIS  ?= redis://127.0.0.1:6379/15

.PHONY: run test test-sqlite test-postgres install bench clean web browser lint

# The web pages' JavaScript bundle (api/web/static/dist/, git-ignored), built by esbuild from npm packages.
WEB_STAMP := api/web/static/dist/.built
NPM_STAMP := node_modules/.package-lock.json

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(MAKE) --no-print-directory web
	@touch $(STAMP)

install: $(STAMP)

web: $(WEB_STAMP)

$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || (apt-get update -q && apt-get install -y -q nodejs npm)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NPM_STAMP)

$(WEB_STAMP): $(NPM_STAMP) api/web/build.mjs $(shell find api/web/src -type f 2>/dev/null)
	npm run --silent build

# Debian's chromium for the browser tests (tests/e2e); they are skipped, with a notice, where it cannot be had.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -q && apt-get install -y -q chromium) || \
	  echo "NOTICE: chromium could not be installed: the browser tests (tests/e2e) are SKIPPED."; \
	else \
	  echo "NOTICE: chromium is missing and needs root + apt-get to install: the browser tests (tests/e2e) are SKIPPED."; \
	fi

run: $(STAMP) web
	$(BIN)/motcua db upgrade
	$(BIN)/motcua demo
	$(BIN)/motcua deploy bpmn/
	$(BIN)/motcua serve

test: $(STAMP) web browser
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite: $(STAMP) web browser
	@echo "== Test suite on the embedded default (SQLite, huey on SQLite) =="
	$(BIN)/pytest -q

test-postgres: $(STAMP)
	@if $(BIN)/python -m tests.services_up "$(PG_URL)" "$(REDIS)"; then \
	  echo "== Test suite again on PostgreSQL + Redis =="; \
	  DATABASE_URL="$(PG_URL)" REDIS_URL="$(REDIS)" $(BIN)/pytest -q; \
	else \
	  echo "NOTICE: PostgreSQL (127.0.0.1:5432, database test) or Redis (127.0.0.1:6379) is not reachable:"; \
	  echo "NOTICE: the PostgreSQL + Redis run of the test suite is SKIPPED on this machine."; \
	fi

# Static checks: ruff (lint + format), the layer contract (import-linter, [importlinter] in setup.cfg) and
# the type checker over engine/ and forms/ (mypy, [tool.mypy] in pyproject.toml).
lint: $(STAMP)
	@echo "== Static checks (ruff, import-linter, mypy) =="
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/bench_engine.py

clean:
	rm -rf $(VENV) var .pytest_cache
