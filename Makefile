# Two entry points (see README): `make demo` sets up and runs the main job; `make test` sets up and runs the tests.
# Both are idempotent: re-running them only installs what is missing.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Headless MuJoCo rendering (EGL and OSMesa, both Mesa llvmpipe on CPU) and shellcheck for the script lint test.
APT_PACKAGES := libegl1 libopengl0 libgl1-mesa-dri libosmesa6 shellcheck
DEMO_LOGDIR ?= runs/demo
# pytest-xdist workers: one per core, 2 to 4 (each pinned to its share of the cores in tests/conftest.py; a worker
# and the runs its tests start take ~1-2 GB)
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -lt 2 ] && n=2; [ $$n -gt 4 ] && n=4; echo $$n)

.PHONY: setup system venv demo test lint clean

setup: system venv

system:
	@bash scripts/install_system.sh $(APT_PACKAGES)

venv:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and exactly pinned: a looser spec would pull GBs of CUDA wheels on CPU-only machines.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q ".[dev]"

demo: setup
	$(BIN)/lamp doctor
	$(BIN)/lamp pretrain --configs smoke --logdir $(DEMO_LOGDIR)

lint:
	$(BIN)/ruff check .

test: setup lint
	@$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=10; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
