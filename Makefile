# Keel: the commands a developer and CI run. Everything goes through .venv/bin/…, no activation needed.
#
#   make run     install, migrate, load demo data, serve http://127.0.0.1:8000 with a Celery worker and beat
#   make test    the whole test suite (the same one CI runs)
#   make test-slow  the tests marked slow (a real PostgreSQL restart): serially, with nothing else running
#   make lint    ruff, mypy, import-linter, migrations check, deploy check
#   make audit   pip-audit over requirements.lock: known vulnerabilities in the locked dependencies
#   make fmt     format and auto-fix
#   make bench   benchmarks on PostgreSQL, written to bench/results.json

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.installed
VAR_DIR := $(or $(KEEL_VAR_DIR),var)

HOST ?= 127.0.0.1
PORT ?= 8000
# Two xdist workers: one per core of the CI machine. `make test PYTEST_ARGS=` runs serially.
PYTEST_ARGS ?= -n 2

# `check --deploy` runs under production settings with dummy secrets; none of these are real.
DEPLOY_CHECK_ENV := KEEL_ENV=production DEBUG=false \
	SECRET_KEY=dummy-Yq7tVb3Kx9LmR2wNc8HfJp4ZsD6gUe1TaQo5WiXy0BnMvCkErGhIjOlPu \
	ALLOWED_HOSTS=keel.example.com SITE_URL=https://keel.example.com \
	EMAIL_PROVIDER=sendgrid SENDGRID_API_KEY=dummy \
	STRIPE_SECRET_KEY=sk_test_dummy STRIPE_WEBHOOK_SECRET=whsec_dummy \
	ANYMAIL_WEBHOOK_SECRET=inbound:dummy \
	TWILIO_ACCOUNT_SID=ACdummy TWILIO_AUTH_TOKEN=dummy

.PHONY: help install run test test-slow lint audit fmt bench var-dirs

help:
	@grep -E '^#   make ' $(firstword $(MAKEFILE_LIST)) | sed 's/^#   //'

install: $(STAMP)

# Re-installs only when the lock file or the package metadata changed.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet -r requirements.lock
	$(PIP) install --quiet --no-deps -e .
	@touch $@

var-dirs:
	@mkdir -p $(VAR_DIR)/broker/queue $(VAR_DIR)/broker/processed $(VAR_DIR)/mail $(VAR_DIR)/media

run: install var-dirs
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) scripts/dev.py --host $(HOST) --port $(PORT)

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The slow tests restart shared servers: one process, no xdist.
test-slow: install
	$(VENV)/bin/pytest -m slow -p no:xdist

lint: install var-dirs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(DEPLOY_CHECK_ENV) $(PY) manage.py check --deploy --fail-level WARNING

audit: install
	$(PY) scripts/audit.py

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	@command -v wrk >/dev/null || { as_root() { if [[ "$$(id -u)" == 0 ]]; then "$$@"; else sudo --non-interactive "$$@"; fi; }; \
		as_root apt-get install -y -q wrk || { as_root apt-get update -q && as_root apt-get install -y -q wrk; }; }
	$(PY) -m bench.run
