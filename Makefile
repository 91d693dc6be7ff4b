# The two set-up commands: `make run` and `make test` (README). Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test venv lint bench bench-quick soak clean

NODE_STAMP := node_modules/.installed

$(STAMP): requirements/base.txt requirements/dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	touch $(STAMP)

# Front-end libraries: exactly the lockfile's versions, served by Django as static files.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

venv: $(STAMP) $(NODE_STAMP)

run: venv
	bin/run

# The suite's files spread over TEST_WORKERS processes (pytest-xdist; each file's tests stay in one, with its
# module's worker), each on a test database and a Redis database of its own; TEST_WORKERS=0 runs it in this one.
# The suite runs on Postgres (its tests of workers, locks and faults need it): DATABASE_URL's server, else the
# local one at 127.0.0.1:5432, as CI's. pytest exits 5 when it collects no test: that is not a failure of the suite.
TEST_WORKERS ?= 2
test: venv
	$(VENV)/bin/python bin/ensure_redis
	export DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/folio}; $(VENV)/bin/python bin/check_postgres \
	  && { $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; exit $$rc; }

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --config pyproject.toml --no-cache

# The benchmarks (issue 7): writes bench/results/latest.json and docs/PERFORMANCE.md, from a clean tree only
# (BENCH_ARGS=--allow-dirty: an experiment, written to var/bench/results/). Uses its own Postgres database
# (BENCH_DATABASE_URL, folio_bench) and Redis database (BENCH_REDIS_URL, 11); sizes are options:
# make bench BENCH_ARGS="--help".
bench: venv
	REDIS_URL=$${BENCH_REDIS_URL:-redis://127.0.0.1:6379/11} $(VENV)/bin/python bin/ensure_redis
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

# The same code paths at small sizes in under two minutes (tests/bench runs it in `make test`): fails only on
# deterministic figures (queries per request, provider requests per refresh, index use); prints the timings.
bench-quick: venv
	REDIS_URL=$${BENCH_REDIS_URL:-redis://127.0.0.1:6379/11} $(VENV)/bin/python bin/ensure_redis
	$(VENV)/bin/python -m bench.quick

# The bounded soak (docs/RELIABILITY.md), left out of `make test` by the `soak` marker: the dashboard endpoints
# through the web server under load while refresh jobs run; writes var/reliability/soak.json. FOLIO_SOAK_SECONDS=90.
soak: venv
	$(VENV)/bin/python bin/ensure_redis
	$(VENV)/bin/pytest -m soak tests/reliability/test_soak.py $(PYTEST_ARGS)

clean:
	rm -rf var staticfiles .pytest_cache
