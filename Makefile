# The two commands that matter: `make run` and `make test`. Everything else is a convenience.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv run run-detached stop test browser engine promtool asyncapi-parser lint format bench broker clean lock

# The locked versions first (the same the service image installs), then Juwei itself and the dev tools.
$(STAMP): pyproject.toml deploy/requirements.lock clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes --no-deps -r deploy/requirements.lock
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e clients/python
	touch $(STAMP)

venv: $(STAMP)

## make run — the local Kafka broker and every service as processes (SQLite under .local/); Ctrl-C stops all.
run: venv
	$(BIN)/juwei run

run-detached: venv
	$(BIN)/juwei run --detach

stop: venv
	$(BIN)/juwei stop

## make test — from nothing: packages, PostgreSQL (Debian package, local cluster), the Kafka broker, a Docker
## engine (Debian's docker.io, started by the stack tests on a socket of their own), promtool, the AsyncAPI parser,
## the suite (the slowest tests listed at the end: the whole run must stay under an hour).
## Most of the suite's time is waiting (brokers, consumer groups, processes starting, Chromium), not CPU: the rest
## runs on three pytest-xdist workers (a file stays on one worker; the broker and PostgreSQL are started once, by the
## controller), and tests/stack (one Docker engine, its images built once) in a pytest of its own beside them, its
## report printed after theirs. `make test PYTEST_ARGS=tests/kernel` runs one plain pytest.
PYTEST := $(BIN)/pytest -p no:cacheprovider
test: venv browser engine promtool asyncapi-parser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	mkdir -p .local
ifeq ($(strip $(PYTEST_ARGS)),)
	@$(PYTEST) --basetemp=.local/pytest-stack --durations=12 tests/stack > .local/stack-tests.log 2>&1 & stack=$$!; \
	trap 'kill $$stack 2>/dev/null' INT TERM; \
	$(PYTEST) --basetemp=.local/pytest --durations=40 -n 3 --dist loadfile --no-loadscope-reorder --ignore=tests/stack; rest=$$?; \
	wait $$stack; stacked=$$?; \
	echo "=== tests/stack (a pytest of its own, beside the rest; .local/stack-tests.log) ==="; \
	cat .local/stack-tests.log; \
	echo "=== the rest: exit $$rest; tests/stack: exit $$stacked ==="; \
	test $$rest -eq 0 && test $$stacked -eq 0
else
	$(PYTEST) --basetemp=.local/pytest --durations=40 $(PYTEST_ARGS)
endif

## Headless Chromium for the building-board test (Debian's package; PostgreSQL is installed by the test session).
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; } || { echo "install Debian's chromium (as root) for the board test"; exit 1; }

## Docker Engine 20.10 and debootstrap from Debian for the stack tests (tests/stack start and stop their own dockerd).
engine:
	@{ command -v dockerd && command -v debootstrap; } >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null; } || { echo "install Debian's docker.io and debootstrap (as root) for the stack tests"; exit 1; }

## promtool from Debian's prometheus package: tests/deploy/test_alerts.py checks and unit-tests deploy/prometheus/alerts.yml.
promtool:
	@command -v promtool >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } || { echo "install Debian's prometheus (as root) for promtool, which tests the alert rules"; exit 1; }

## The official AsyncAPI parser (npm's @asyncapi/parser, pinned by tests/asyncapi/package-lock.json) in
## .local/asyncapi-parser: tests/kernel/test_asyncapi.py validates the generated catalogue with it. Needs node and npm.
ASYNCAPI_PARSER := .local/asyncapi-parser
$(ASYNCAPI_PARSER)/.installed-stamp: tests/asyncapi/package.json tests/asyncapi/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; } || { echo "install node and npm for the AsyncAPI parser"; exit 1; }
	mkdir -p $(ASYNCAPI_PARSER)
	cp tests/asyncapi/package.json tests/asyncapi/package-lock.json $(ASYNCAPI_PARSER)/
	cd $(ASYNCAPI_PARSER) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

asyncapi-parser: $(ASYNCAPI_PARSER)/.installed-stamp

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .

## make bench — issue 8's benchmarks at their default sizes (~20 min; bench/README.md has each command and the figures).
bench: venv
	$(BIN)/python bench/relay_throughput.py
	$(BIN)/python bench/append_rate.py
	$(BIN)/python bench/rebuild_rate.py
	$(BIN)/python bench/seed_round.py
	$(BIN)/python bench/result_latency.py
	$(BIN)/python bench/district_round.py

broker: venv
	$(BIN)/juwei broker start

## make lock — pin the service image's packages (with hashes) after a change to pyproject's dependencies.
lock: venv
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links \
	  --output-file deploy/requirements.lock pyproject.toml

clean:
	rm -rf .local/pytest .local/test

## make up / make down — the production stack (deploy/compose.yaml, settings in deploy/.env) via python-on-whales.
.PHONY: up down
up: venv
	$(BIN)/juwei up

down: venv
	$(BIN)/juwei down

## make demo — the seed compound's day against a running suite (`make run-detached` first); DEMO_ARGS="--scale 0.2".
.PHONY: demo
demo: venv
	$(BIN)/juwei demo $(DEMO_ARGS)
