# The two commands a user needs: `make run` and `make test`. Everything else is for developers.
# Works on a fresh machine with only Python 3.11+ and make: uv is bootstrapped from PyPI into
# .tools/ when it is not on PATH, and the machine's own Python is used (none is downloaded).

PYTHON ?= python3
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
UV_VERSION := 0.13.8
export UV_PYTHON_DOWNLOADS := never
# Keep compiled bytecode. Some machines set PYTHONDONTWRITEBYTECODE: then every service
# process, bench worker and test worker compiles every module it imports again (a
# service's imports took 7.7 s instead of 3.3 s on the 2-core CI machine).
unexport PYTHONDONTWRITEBYTECODE
VENV := .venv
BIN := $(VENV)/bin
# `make test` runs the unit and service tests in four workers (one file each at a time;
# on two cores a fourth keeps the CPU busy while others wait on I/O and sleeps),
# then the end-to-end tests in two (each file starts whole systems of its own, kills
# processes and waits on them, so they do not share the machine with the service tests).
# PYTEST_ARGS goes to both runs.
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 4
E2E_WORKERS ?= 2

.PHONY: install run test test-fast lint format bench dlq reports-rebuild clean

install: $(VENV)/.installed

.tools/bin/uv:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.installed: uv.lock pyproject.toml libs/kernel/pyproject.toml $(wildcard services/*/pyproject.toml) | $(UV)
	$(UV) sync --frozen --all-packages --compile-bytecode --python "$$(command -v $(PYTHON))"
	@touch $@

run: install
	$(BIN)/python tools/run.py

test: lint
	$(BIN)/pytest -m "not e2e" -n $(PYTEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)
	$(BIN)/pytest -m e2e -n $(E2E_WORKERS) --dist loadfile --durations=5 $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: PYTEST_ARGS selected no e2e test

test-fast: install
	$(BIN)/pytest -m "not e2e" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs/kernel/src services/*/src tools

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python bench/run.py

# Empty the reports read models and replay every stream (same settings as the running service).
reports-rebuild: install
	$(BIN)/python -m crm_reports.rebuild

dlq: install
	$(BIN)/python -m crm_kernel.dlq list

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
