# Ribambelle — `make run` serves the demo portal, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
# The payment provider the demo's simulator plays: payfip_ws (PayFiP), systempayv2 or payzen.
SIMULATOR ?= payfip_ws
export FLASK_APP := app
# The portal's public address (links in mails, payment returns); a town sets its own in /etc/ribambelle.env.
export FLASK_BASE_URL ?= http://127.0.0.1:$(PORT)

# The demo town's direct debit: a valid creditor identifier and an account in the Trésor public's format.
DEMO_SEPA := FLASK_SEPA_CREDITOR_ID=FR72ZZZ123456 FLASK_SEPA_CREDITOR_IBAN=FR7630001000000006400000084 \
	FLASK_SEPA_CREDITOR_BIC=BDFEFRPPCCT

.PHONY: run test sprite accessibility bench bench-wrk bench-rush bench-cost wrk valgrind install install-dev migrate seed browser clean

# Runtime packages only (what a server needs); the test tools come with `make test`.
$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# Locust, the load tool of bench-rush, in a virtualenv of its own (it only speaks HTTP to the portal).
.venv-locust/.installed: requirements-bench.txt
	test -x .venv-locust/bin/python || $(PYTHON) -m venv .venv-locust
	.venv-locust/bin/python -m pip install --quiet -r requirements-bench.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/flask migrate

seed: migrate
	$(BIN)/flask seed-demo

run: seed
	@echo "Portail famille : http://127.0.0.1:$(PORT)  (courriels de démo : http://127.0.0.1:$(PORT)/demo/courriels)"
	FLASK_DEMO_MAILBOX=true FLASK_PAYMENT_SIMULATOR=$(SIMULATOR) $(DEMO_SEPA) $(BIN)/flask run --host 127.0.0.1 --port $(PORT)

# Debian's Chromium for the browser journeys (Playwright drives it; its own download does not work here)
# and nginx with its brotli module, which the deployment test runs with deploy/nginx.conf in front of two
# app processes.
browser:
	@missing=""; test -x /usr/bin/chromium || missing="chromium"; \
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || missing="$$missing nginx"; \
	test -e /usr/lib/nginx/modules/ngx_http_brotli_filter_module.so || missing="$$missing libnginx-mod-http-brotli-filter"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "Manquant :$$missing (sudo apt-get install$$missing) ; les tests qui en ont besoin seront ignorés"; fi; fi

# axe-core (npm) for the accessibility tests, injected by Playwright into Chromium.
tests/a11y/node_modules/axe-core/axe.min.js: tests/a11y/package.json
	@if command -v npm >/dev/null; then cd tests/a11y && npm install --no-package-lock --no-audit --no-fund --silent; \
	else echo "npm manquant : les contrôles axe-core seront ignorés (apt-get install npm)"; fi

# The linter (settings in pyproject.toml), then the whole suite, on SQLite and, when a server answers,
# PostgreSQL (RIBAMBELLE_TEST_PG_URL), in TEST_WORKERS processes (pytest-xdist: much of a test is waiting
# for Chromium, a server or a subprocess; 2 on 2 cores take 9 minutes where one took 15).
test: install-dev browser tests/a11y/node_modules/axe-core/axe.min.js .venv-locust/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $${TEST_WORKERS:-2} $(PYTEST_ARGS)

# The accessibility statement (/accessibilite) from a complete run of the checks it names
# (services/accessibility.CHECKS): writes static/accessibilite.json, to commit with the change.
accessibility: install-dev browser tests/a11y/node_modules/axe-core/axe.min.js
	RIBAMBELLE_A11Y_RESULTS=static/accessibilite.json $(BIN)/python -m pytest --backends sqlite \
	  tests/test_accessibility.py tests/test_payments.py tests/test_booking_journey.py tests/test_phone_planning.py

# Every icon in one file (static/icons/sprite.svg), after adding or changing one of static/icons/*.svg.
sprite: install
	$(BIN)/python -c "from pathlib import Path; from services.assets import write_sprite; write_sprite(Path('static/icons'))"

# Benchmarks print figures; they are not tests. Each works on a database of its own: a SQLite file, or
# the PostgreSQL database BENCH_PG names, which must end in _bench (emptied; never DATABASE_URL).
# `make bench` runs them all, the registration-opening rush last (about half an hour on 2 cores).
BENCH_PG ?= postgresql+psycopg://postgres@127.0.0.1:5432/ribambelle_bench
bench: install-dev browser wrk valgrind
	$(BIN)/python -m tests.benchmarks.bench_cost --database sqlite
	$(BIN)/python -m tests.benchmarks.bench_cost --database postgresql --pg-url $(BENCH_PG)
	$(BIN)/python -m tests.benchmarks.bench_wrk --database sqlite
	$(BIN)/python -m tests.benchmarks.bench_wrk --database postgresql --pg-url $(BENCH_PG)
	$(BIN)/python -m tests.benchmarks.bench_planning --requests $${REQUESTS:-300}
	$(BIN)/python -m tests.benchmarks.bench_billing --families $${FAMILIES:-2000}
	$(BIN)/python -m tests.benchmarks.bench_phone
	$(MAKE) bench-rush

# A parent's click against the stack's floor (tests/benchmarks/floor.py), with wrk (Debian's package).
wrk:
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "wrk manquant : sudo apt-get install wrk"; exit 1; fi; }

# What each hot route costs the processor, in instructions (callgrind: the same count on a busy or a quiet
# machine), beside /healthz's; valgrind is Debian's package.
valgrind:
	@command -v valgrind >/dev/null || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; \
	  else echo "valgrind manquant : sudo apt-get install valgrind"; exit 1; fi; }

bench-cost: install-dev valgrind
	$(BIN)/python -m tests.benchmarks.bench_cost --database sqlite
	$(BIN)/python -m tests.benchmarks.bench_cost --database postgresql --pg-url $(BENCH_PG)

bench-wrk: install-dev wrk
	$(BIN)/python -m tests.benchmarks.bench_wrk --database sqlite
	$(BIN)/python -m tests.benchmarks.bench_wrk --database postgresql --pg-url $(BENCH_PG)

# The registration-opening morning: Locust's parents through nginx (deploy/nginx.conf) to gunicorn, on
# PostgreSQL, then on SQLite with one server.
bench-rush: install-dev browser .venv-locust/.installed
	$(BIN)/python -m tests.benchmarks.bench_rush --families $${FAMILIES:-2000} --workers $${WORKERS:-4} --sqlite \
	  --paced $${PACED:-32,64,128,256} --arrivals $${ARRIVALS:-1,2,4} \
	  --pg-url $(BENCH_PG)

clean:
	rm -rf $(VENV) .venv-locust .pytest_cache
