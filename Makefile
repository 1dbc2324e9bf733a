# The two commands a newcomer needs: `make run` and `make test`.
# The system's Python 3.11 when it has one (Debian's and Ubuntu's are built with PGO
# and LTO, and run the shop on less CPU than a plain source build such as pyenv's: see
# the README's Speed), else the first python3.11 on PATH. PYTHON=... chooses another.
PYTHON ?= $(shell for p in /usr/bin/python3.11 python3.11; do \
	$$p -c 'import ensurepip, venv' >/dev/null 2>&1 && { command -v $$p; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin
PG_URL ?= postgres://postgres@localhost:5432/shop
TEST_REDIS_URL ?= redis://localhost:6379/14
# The clean-install smoke's web port; 0 takes a free one.
SMOKE_PORT ?= 0

.PHONY: install run run-dev test smoke-install lint bench-outbox bench-saga clean

$(BIN)/activate: pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no Python 3.11 with venv found; install python3.11-venv or pass PYTHON=" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/activate

install: $(BIN)/activate

## Set up and run the whole system: web, worker, beat, relay, with demo data.
run: install
	$(BIN)/python scripts/run.py

## The same with Django's development server (auto-reload) instead of gunicorn.
run-dev: install
	$(BIN)/python scripts/run.py --dev

## Set up and run the checks and the tests (PostgreSQL and Redis on localhost), the
## deploy check of production.env.example and the API fuzz (shop/tests/test_fuzz.py).
test: install
	bash scripts/services.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	export DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} REDIS_URL=$${TEST_REDIS_URL:-$(TEST_REDIS_URL)} \
		SECRET_KEY=$${SECRET_KEY:-$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')}; \
	$(BIN)/python manage.py check --fail-level WARNING && \
	( set -a && . ./production.env.example && set +a && \
		$(BIN)/python manage.py check --deploy --fail-level WARNING ) && \
	$(BIN)/python manage.py makemigrations --check --dry-run && \
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null && \
	DJANGO_SETTINGS_MODULE=shop.test_settings $(BIN)/python manage.py makemigrations probe --check --dry-run && \
	DJANGO_SETTINGS_MODULE=shop.bench_settings $(BIN)/python manage.py makemigrations outbox_bench --check --dry-run && \
	$(BIN)/pytest && \
	$(BIN)/python scripts/smoke_install.py --database-url "$$DATABASE_URL" --redis-url "$$REDIS_URL" --port $(SMOKE_PORT)

## Build the wheel, install it without extras into a fresh virtualenv and run web, worker and
## beat from it: one order through the API to CONFIRMED (database <name>_smoke, then dropped).
smoke-install: install
	$(BIN)/python scripts/smoke_install.py --database-url "$${DATABASE_URL:-$(PG_URL)}" \
		--redis-url "$${TEST_REDIS_URL:-$(TEST_REDIS_URL)}" --port $(SMOKE_PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

## Relay and consumer throughput and latency; prints a table and writes bench/outbox.json.
## It needs a database of its own (created when missing) and Redis db 13; see bench/README.md.
## BENCH_ARGS adds options, e.g. make bench-outbox BENCH_ARGS=--flat-cost
bench-outbox: install
	DJANGO_SETTINGS_MODULE=shop.bench_settings \
	DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@localhost:5432/shop_bench} \
	REDIS_URL=$${BENCH_REDIS_URL:-redis://localhost:6379/13} \
		$(BIN)/python manage.py bench_outbox --json bench/outbox.json $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles

## The whole shop under load through its API: confirmed orders/s, POST -> CONFIRMED latency,
## CPU per order by process; prints a table and writes bench/saga.json. Its own database
## (BENCH_SAGA_DATABASE_URL, default shop_bench_saga, recreated) and its own Redis (port 6391).
bench-saga: install
	$(BIN)/python -m bench.saga --json bench/saga.json
