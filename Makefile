# CommuniTV — `make run` brings the whole platform up; `make test` proves it.
SHELL := /bin/bash
# What running needs (`make run` installs only these on a production box)...
RUN_PACKAGES := python3 python3-venv ca-certificates redis-server mosquitto ffmpeg nginx libnginx-mod-rtmp libnginx-mod-nchan \
	libvlc5 libvlc-bin vlc-plugin-base fonts-noto-cjk espeak-ng iproute2
# ...and what testing adds (`make test`): the browser, a PostgreSQL to test against, load and XML tools,
# compilers for any wheel that must be built, systemd-analyze for the production layout's units.
TEST_PACKAGES := python3-dev build-essential chromium postgresql postgresql-client mosquitto-clients \
	libxml2-utils wrk systemd curl
SYSTEM_PACKAGES := $(RUN_PACKAGES) $(TEST_PACKAGES)
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export COMMUNITV_DATA_DIR ?= $(CURDIR)/var

# Python packages: pinned by requirements.lock (a constraints file) for both commands.
PIP_INSTALL := $(BIN)/pip install -q -c requirements.lock

.PHONY: run test test-layout bench deps deps-run venv venv-run lock clean lint

deps-run:
	@scripts/install-system-deps.sh $(RUN_PACKAGES)

deps:
	@scripts/install-system-deps.sh $(SYSTEM_PACKAGES)

$(BIN)/python:
	@$${PYTHON:-$(PYTHON)} -m venv $(VENV) || /usr/bin/python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# What running needs.
$(BIN)/.installed-run: pyproject.toml requirements.lock | deps-run $(BIN)/python
	$(PIP_INSTALL) -e .
	@touch $@

# Running plus testing.
$(BIN)/.installed: pyproject.toml requirements.lock | deps $(BIN)/python
	$(PIP_INSTALL) -e '.[test]'
	@touch $@ $(BIN)/.installed-run

venv-run: deps-run $(BIN)/.installed-run

venv: deps $(BIN)/.installed

# Upgrading is `git pull` then `make run`: new requirements install, migrations run at start.
run: venv-run
	$(BIN)/python -m portal_server.stack run

# After changing dependencies in pyproject.toml: re-pin from a fresh environment.
lock:
	rm -rf .venv-lock && $${PYTHON:-$(PYTHON)} -m venv .venv-lock && .venv-lock/bin/pip install -q -e '.[test]'
	{ sed -n '1,2p' requirements.lock; .venv-lock/bin/pip freeze --exclude-editable | grep -v '^communitv'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .venv-lock

test: venv
	$(BIN)/python -m pytest -n $${CTV_TEST_WORKERS:-2} --dist loadgroup -q $(PYTEST_ARGS)

# The production layout alone (separate hosts in network namespaces; needs root): tests/deploy.
test-layout: venv
	$(BIN)/python -m pytest -n 0 -q tests/deploy

bench: venv
	@set -e; for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b; done

lint: venv
	$(BIN)/pip install -q ruff && $(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache
