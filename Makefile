# The two set-up commands: `make run` and `make test` (README). Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test venv lint bench soak clean

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

# pytest exits 5 when it collects no test: that is not a failure of the suite.
test: venv
	$(VENV)/bin/python bin/ensure_redis
	$(VENV)/bin/pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; exit $$rc

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf var staticfiles .pytest_cache
