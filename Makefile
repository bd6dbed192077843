# batchpipe — the two commands a new user needs are `make run` and `make test`.
# Every target bootstraps what is missing (.venv from constraints.txt, node_modules from package-lock.json).

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTEST_ARGS ?=
RUN_ARGS ?=

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.prefect-home

.PHONY: run test test-slow lint format typecheck pytest deps container-deps azure-cli bench emulator clean help

help:
	@echo "make run     run the pipeline on the bundled samples (Azurite + local Batch service, no account needed)"
	@echo "make test    lint, type-check and run the whole test suite"
	@echo "make test-slow  the scenarios that take minutes, and the real Azure CLI (make azure-cli installs it)"
	@echo "make lint / format / typecheck / bench / emulator / clean / container-deps / azure-cli"

$(VENV)/.installed: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=python3.x"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found; install Node.js 20+ and npm"; exit 1; }
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

# The legacy client azure-batch 14.2 and azure-mgmt-batch 17.3 in an environment of their own
# (tests/test_emulator/test_clients_v14.py, test_clients_snakemake.py).
.venv-v14/.installed: constraints-v14.txt
	test -x .venv-v14/bin/python || $(PYTHON) -m venv .venv-v14
	.venv-v14/bin/python -m pip install --quiet --disable-pip-version-check -c constraints-v14.txt azure-batch azure-mgmt-batch
	@touch $@

# The track-1 clients azure-batch 13.0 (constraints-v13.txt) and, beside it on the same dependencies, 11.0 and 12.0
# (tests/test_emulator/test_clients_track1.py puts .venv-v13/azure-batch-<version> first on PYTHONPATH).
TRACK1_OLDER := 11.0.0 12.0.0
.venv-v13/.installed: constraints-v13.txt
	test -x .venv-v13/bin/python || $(PYTHON) -m venv .venv-v13
	.venv-v13/bin/python -m pip install --quiet --disable-pip-version-check -c constraints-v13.txt azure-batch
	for version in $(TRACK1_OLDER); do \
	  .venv-v13/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
	    --target .venv-v13/azure-batch-$$version azure-batch==$$version || exit 1; \
	done
	@touch $@

deps: $(VENV)/.installed node_modules/.installed .venv-v14/.installed .venv-v13/.installed

# The real Azure CLI (azure-cli 2.91, ~730 MB, ~2 min) for tests/test_emulator/test_clients_azure_cli.py (slow).
.venv-azure-cli/.installed: constraints-azure-cli.txt
	test -x .venv-azure-cli/bin/python || $(PYTHON) -m venv .venv-azure-cli
	.venv-azure-cli/bin/python -m pip install --quiet --disable-pip-version-check -c constraints-azure-cli.txt azure-cli
	@touch $@

azure-cli: .venv-azure-cli/.installed

run: deps
	$(BIN)/batchpipe run --approve yes $(RUN_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# Container tests run podman (or docker) with a local busybox image: as root with apt-get this installs
# podman, runc and busybox-static when missing (CI); otherwise it prints what to install. `make run` never needs it.
container-deps:
	@.ci/container-deps

# pytest exits 5 when it collected nothing: for this suite that means it is misconfigured, so it fails loudly.
pytest: deps container-deps
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests (check testpaths / PYTEST_ARGS)"; exit 1; fi; \
	exit $$rc

test: lint typecheck pytest

# The slow scenarios (10,000 inputs, SIGKILL mid-run and rerun): minutes each, so not part of `make test`.
test-slow: deps container-deps .venv-azure-cli/.installed
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

bench: deps
	$(PY) -m bench $(BENCH_ARGS)

emulator: deps
	$(BIN)/batchpipe emulator

clean:
	rm -rf .batchpipe .prefect-home .pytest_cache .mypy_cache .ruff_cache build *.egg-info
