# One command vocabulary for people, the README and CI.
#   make demo   - create .venv, install pinned dependencies, run the whole loop on embedded defaults
#   make test   - create .venv, install pinned dependencies (+ test extras), run the whole suite
#                 but the full-size acceptance runs (make acceptance)
#   make acceptance - the policy's acceptance table, full size (DRIFTLOOP_ACCEPTANCE_SIZE=small
#                 for CI's smaller run)
#   make lint   - ruff check + ruff format --check;  make format - ruff format
#   make up     - start (or keep) the production-shaped stack: Prefect server, MLflow server,
#                 a process worker, deployments from deployments/prefect.yaml, on-call automations,
#                 a read-only server of a local lake's reports
#   make down   - stop it;  make status - what is running
#   Stack settings come from the environment (see deployments/stack.py), e.g.
#   DRIFTLOOP_STACK=prod (PostgreSQL + S3), DRIFTLOOP_WEBHOOK_URL=https://hooks.slack.com/...
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.driftloop-installed

# Keep every tool's state inside the project and every library quiet on the network.
export PREFECT_HOME ?= $(CURDIR)/.prefect
export MPLCONFIGDIR ?= $(CURDIR)/.cache/matplotlib
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= true
export GX_ANALYTICS_ENABLED ?= false

.PHONY: system-deps install demo test test-serial test-fast acceptance lint format prefect-ui mlflow-ui up down status lock clean
.PHONY: image test-containers test-browser

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "driftloop needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,prod]'
	@touch $(STAMP)

install: $(STAMP)

# Debian packages some suites need (debian-packages.txt); the loop itself needs none.
system-deps:
	@pkgs=$$(grep -v '^\s*#' debian-packages.txt | grep -v '^\s*$$' | while read -r p; do \
		dpkg -s "$$p" >/dev/null 2>&1 || echo "$$p"; done); \
	if [ -n "$$pkgs" ]; then \
		sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		echo "installing Debian packages: $$pkgs"; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$pkgs; \
	fi

demo: $(STAMP)
	$(BIN)/driftloop demo

# Test files run in parallel, one worker per core (at most 4): each worker has its own Prefect
# test server and temporary folders; a file's tests stay on one worker (module fixtures).
# `make test` is unit + integration + e2e (what CI runs); the full-size runs are `acceptance`.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadfile -m "not acceptance and not containers and not faults and not browser and not load and not serial"

# Stack end-to-end runs that time out when other suites share the 2 cores (marker `serial`):
# one process, after `make test` (.ci/run), about 3 minutes.
test-serial: $(STAMP)
	$(BIN)/python -m pytest -m serial

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadfile -m "not e2e and not acceptance and not containers and not faults and not browser and not load and not serial"

# The Prefect UI in headless Chromium (tests marked `browser`): Debian's chromium and
# chromium-driver (`make system-deps`), selenium from the test extra; skipped, saying so, without
# them. About a minute: one Prefect server with the deployments, three pages.
test-browser: $(STAMP)
	$(BIN)/python -m pytest -m browser tests/browser

# The tests marked `acceptance`: the policy's acceptance table (`driftloop backtest
# --acceptance`), every case must hold. DRIFTLOOP_ACCEPTANCE_SIZE=full (the stated sizes: 10k rows
# per window, 100k for the quiet case) or small (5k / 30k rows, what .ci/run runs), e.g.
#   make acceptance DRIFTLOOP_ACCEPTANCE_SIZE=small
DRIFTLOOP_ACCEPTANCE_SIZE ?= full
acceptance: $(STAMP)
	DRIFTLOOP_ACCEPTANCE_SIZE=$(DRIFTLOOP_ACCEPTANCE_SIZE) $(BIN)/python -m pytest -m acceptance

# Both checks run (and both report) before the target fails.
lint: $(STAMP)
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	exit $$status

format: $(STAMP)
	$(BIN)/ruff format .

# The demo's runs live in .prefect/ (Prefect) and data/demo/ (MLflow); these UIs read them.
prefect-ui: $(STAMP)
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 \
		--backend-store-uri sqlite:///$(CURDIR)/data/demo/mlflow.db \
		--default-artifact-root $(CURDIR)/data/demo/mlartifacts

# The stack: one Python module (deployments/stack.py) used here and by the e2e tests.
up: $(STAMP)
	$(BIN)/python -m driftloop.deployments.stack up

down: $(STAMP)
	$(BIN)/python -m driftloop.deployments.stack down

status: $(STAMP)
	$(BIN)/python -m driftloop.deployments.stack status

# Re-resolve the pins after changing pyproject.toml (then run a real flow: see DESIGN.md).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[test,prod]'
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt
	rm -rf .lock-venv

# Every benchmark, one after the other (about an hour on 2 cores); each prints its own table.
.PHONY: bench
bench: bench-validation bench-drift bench-scoring bench-scale-out bench-training bench-search

# validate_frame vs a bare Great Expectations call, 1M rows x 20 columns (see benchmarks/README.md)
.PHONY: bench-validation bench-drift
bench-validation: $(STAMP)
	$(BIN)/python benchmarks/validation.py

# the drift check vs a naive Evidently DataDriftPreset report, 1M vs 1M rows, every scenario
bench-drift: $(STAMP)
	$(BIN)/python benchmarks/drift.py

# the drift check's window statistics: peak memory on 10M rows vs 1M (~4 GB, minutes)
.PHONY: bench-drift-window
bench-drift-window: $(STAMP)
	$(BIN)/python benchmarks/drift_window.py

# streaming score vs bare read_parquet -> predict_proba -> to_parquet, 100k/1M/10M rows (minutes)
.PHONY: bench-scoring
bench-scoring: $(STAMP)
	$(BIN)/python benchmarks/scoring.py

# partitioned scoring on Dask, 1 vs 2 workers (see benchmarks/README.md)
.PHONY: bench-scale-out
bench-scale-out: $(STAMP)
	$(BIN)/python benchmarks/scale_out.py

clean:
	rm -rf $(VENV) .prefect .stack data/demo data/lake data/mlflow .pytest_cache

# The train flow (against a Prefect server started for the run) vs a bare script doing the same
# library calls, 1k/100k/1M rows, default model and LogisticRegression (see benchmarks/README.md)
.PHONY: bench-training
bench-training: $(STAMP)
	$(BIN)/python benchmarks/training.py

# Hyperparameter-search trials on a Dask LocalCluster with 1 vs 2 workers (speed-up printed)
.PHONY: bench-search
bench-search: $(STAMP)
	$(BIN)/python benchmarks/search.py

# The flows' image from the Containerfile, with docker when its engine answers, else podman
# (deployments/container/build-local.sh: a debootstrap'ed Debian base when no base image is
# there, a wheelhouse filled here, then the build). DRIFTLOOP_IMAGE names it (localhost/driftloop:dev);
# DRIFTLOOP_BASE_IMAGE=python:3.11-slim uses the official base where a registry is reachable.
image: $(STAMP)
	PYTHON=$(BIN)/python deployments/container/build-local.sh

# The image built, then ingest, train and score runs of the deployments in containers of it (a
# Docker-type work pool) against a stack on 127.0.0.1 (podman or docker; root for the first debootstrap).
test-containers: $(STAMP)
	$(BIN)/python -m pytest -m containers tests/containers

# The fault-injection suite (tests/faults/, marker `faults`): servers and files failing mid-run,
# each fault and its promise listed in docs/reliability.md. One session of shared servers.
.PHONY: faults
faults: $(STAMP)
	$(BIN)/python -m pytest -m faults tests/faults

# The servers under load: many lightweight API clients doing a flow run's calls against the
# default stack's Prefect and MLflow servers; latency percentiles, CPU per server, first to
# saturate (benchmarks/api_load.py). `test-load` is the small run CI makes (marker `load`).
.PHONY: load-test test-load
load-test: $(STAMP)
	$(BIN)/python benchmarks/api_load.py

test-load: $(STAMP)
	$(BIN)/python -m pytest -m load tests/load
