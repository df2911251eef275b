# The two commands of the quick start:  make up   and   make test
# Everything runs without Docker: Kafka from Maven jars on the installed Java,
# Prometheus and Alertmanager from Debian packages, the rest from .venv.

PY      := .venv/bin/python
CLI     := $(PY) -m opsmetrics.cli
SIMULATE ?= 1
PYTEST_ARGS ?=

.PHONY: help setup tools up down status test check lint format typecheck schema generated \
	regenerate eval-alerts eval-alerts-quick bench bench-render bench-memory bench-rss bench-counter bench-floor bench-restore reliability clean

help:
	@echo "make up [SIMULATE=0]  start the local stack (Kafka, topics, worker, ...), idempotent"
	@echo "make down             stop everything make up started"
	@echo "make status           what is running"
	@echo "make test             the whole test suite (installs what it needs)"
	@echo "make reliability      the fault-injection suite, report in .run/reliability.jsonl"
	@echo "make check            lint, format check, type check, generated files current"
	@echo "make eval-alerts      alert quality over simulated years (docs/alert-quality.md)"
	@echo "make regenerate       rules and dashboards from their generators"

setup: .venv/.synced

.venv/.synced: pyproject.toml uv.lock
	stack/bootstrap.sh

# Prometheus, promtool, Alertmanager and amtool from Debian's packages (as root).
tools:
	@command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null \
	  || sh prometheus/install.sh

up: setup tools
	$(CLI) up $(if $(filter 0,$(SIMULATE)),--no-simulate,--simulate)

down: setup
	$(CLI) down

status: setup
	$(CLI) status

check: lint typecheck schema generated

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

typecheck: setup
	.venv/bin/mypy opsmetrics services streams stack alerts_eval dashboards
	.venv/bin/mypy -p benchmarks

schema: setup
	$(CLI) contract schema --check

# Generated files are committed; CI regenerates them and fails on a difference.
generated: setup
	$(PY) -m alerts_eval generate-rules --check
	$(PY) -m dashboards --check
	$(PY) -m services.ingest.openapi --check

regenerate: setup
	$(CLI) contract schema
	$(PY) -m alerts_eval generate-rules
	$(PY) -m dashboards
	$(PY) -m services.ingest.openapi

eval-alerts: setup tools
	$(PY) -m alerts_eval run

eval-alerts-quick: setup tools
	$(PY) -m alerts_eval run --quick

test: setup tools check
	$(PY) -m pytest $(PYTEST_ARGS)

reliability: setup tools
	mkdir -p .run && rm -f .run/reliability.jsonl
	OPS_RELIABILITY_REPORT=.run/reliability.jsonl $(PY) -m pytest tests/reliability -q -s $(PYTEST_ARGS)

clean: down
	rm -rf .run

# Throughput, latency, scrape cost and memory side by side (not a test; minutes).
# BENCH_EVENTS=50000 BENCH_RUNS=1 for a quick run; figures in the README use the defaults.
bench: setup
	$(PY) -m benchmarks.bench

# /metrics render in process: old window sums vs incremental, side by side (about 2 minutes).
# RENDER_EVENTS=100000 RENDER_RUNS=5 for a quick run.
bench-render: setup
	$(PY) -m benchmarks.render
# What the worker's state costs per event (first index, seen, counts, view), in-process,
# no Kafka; BENCH_EVENTS=50000 for a quick run (docs/performance.md, "Memory").
bench-memory: setup
	$(PY) -m benchmarks.memory
# The real worker's RSS over a backlog (idle, each 10%, peak), per variant of its
# environment; BENCH_EVENTS (default 200000), RSS_VARIANTS (docs/performance.md, "Memory").
bench-rss: setup
	$(PY) -m benchmarks.rss
# EventCounter.handle_batch per event, in process, no Kafka (docs/performance.md);
# BENCH_PROFILE=1 for a pyinstrument profile, COUNTER_BASE=<other tree> to compare.
bench-counter: setup
	$(PY) -m benchmarks.counter

# The worker with its counting stubbed out, beside the limit: the pipeline's ceiling.
bench-floor: setup
	$(PY) -m benchmarks.floor

# A restarted worker restoring its tables from their changelogs: seconds, records/s;
# BENCH_EVENTS (default 200000), RESTORE_TREES=name=<dir>,... to compare trees.
bench-restore: setup
	$(PY) -m benchmarks.restore
