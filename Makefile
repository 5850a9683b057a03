# The two commands of the README. Each does all its own set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
REDIS  ?= redis://127.0.0.1:6379/15

.PHONY: run test test-sqlite test-postgres install bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/motcua db upgrade
	$(BIN)/motcua deploy bpmn/
	$(BIN)/motcua demo
	$(BIN)/motcua serve

test: $(STAMP)
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite: $(STAMP)
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

bench: $(STAMP)
	$(BIN)/python bench/bench_engine.py

clean:
	rm -rf $(VENV) var .pytest_cache
