# The two commands of the quick start:  make up   and   make test
# Everything runs without Docker: Kafka from Maven jars on the installed Java,
# Prometheus and Alertmanager from Debian packages, the rest from .venv.

PY      := .venv/bin/python
CLI     := $(PY) -m opsmetrics.cli
SIMULATE ?= 1
PYTEST_ARGS ?=

.PHONY: help setup up down status test check lint format typecheck schema clean

help:
	@echo "make up [SIMULATE=0]  start the local stack (Kafka, topics, worker, ...), idempotent"
	@echo "make down             stop everything make up started"
	@echo "make status           what is running"
	@echo "make test             the whole test suite (installs what it needs)"
	@echo "make check           lint, format check, type check, generated files current"

setup: .venv/.synced

.venv/.synced: pyproject.toml uv.lock
	stack/bootstrap.sh

up: setup
	$(CLI) up $(if $(filter 0,$(SIMULATE)),--no-simulate,--simulate)

down: setup
	$(CLI) down

status: setup
	$(CLI) status

check: lint typecheck schema

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

typecheck: setup
	.venv/bin/mypy opsmetrics services streams stack

schema: setup
	$(CLI) contract schema --check

test: setup check
	$(PY) -m pytest $(PYTEST_ARGS)

clean: down
	rm -rf .run
