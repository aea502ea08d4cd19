# CommuniTV — `make run` brings the whole platform up; `make test` proves it.
SHELL := /bin/bash
SYSTEM_PACKAGES := python3 python3-venv python3-dev build-essential ca-certificates \
	redis-server mosquitto mosquitto-clients ffmpeg nginx libnginx-mod-rtmp libnginx-mod-nchan \
	libvlc5 libvlc-bin vlc-plugin-base chromium fonts-noto-cjk postgresql espeak-ng libxml2-utils wrk
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export COMMUNITV_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test bench deps venv clean lint

deps:
	@scripts/install-system-deps.sh $(SYSTEM_PACKAGES)

$(BIN)/.installed: pyproject.toml | deps
	@test -x $(BIN)/python || $${PYTHON:-$(PYTHON)} -m venv $(VENV) || /usr/bin/python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: deps $(BIN)/.installed

run: venv
	$(BIN)/python -m portal_server.stack run

test: venv
	$(BIN)/python -m pytest -n $${CTV_TEST_WORKERS:-2} --dist loadgroup -q $(PYTEST_ARGS)

bench: venv
	@set -e; for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b; done

lint: venv
	$(BIN)/pip install -q ruff && $(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache
