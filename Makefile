# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Reinstall when the package metadata changes.
INSTALLED := $(VENV)/.installed
TEST_INSTALLED := $(VENV)/.installed-test

.PHONY: run check test toolchains hello examples bench clean wheelhouse

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(INSTALLED): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## run: start a single-node fless (core and worker) with the embedded defaults
run: $(INSTALLED)
	$(BIN)/fless-node $(ARGS)

## toolchains: install every language SDK's toolchain (fless toolchain install --all); quick when present
toolchains: $(INSTALLED)
	$(BIN)/fless toolchain install --all

## check: the quick loop, under a minute: format, lint, types and the tests not marked slow
check: $(TEST_INSTALLED)
	$(BIN)/ruff format --check fless tests bench
	$(BIN)/ruff check fless tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q -m "not slow" $(PYTEST_ARGS)

## test: install the toolchains, lint, type-check and run the whole test suite (nothing to install by hand: the scripts/*-deps.sh bring the rest)
test: $(TEST_INSTALLED) toolchains
	sh scripts/system-deps.sh
	sh scripts/ui-deps.sh
	sh scripts/events-deps.sh
	$(BIN)/ruff format --check fless tests bench
	$(BIN)/ruff check fless tests bench
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

## examples: build the example functions to .wasm (examples/<lang>-<name>/ with fless fn build)
## hello: build only examples/hello (C, with zig from PyPI): the README's worked example; needs fless and zig, not the test tools
hello: $(INSTALLED)
	$(BIN)/fless toolchain install c
	PYTHON=$(abspath $(BIN)/python) sh examples/hello/build.sh

## examples: build every example, in every language (installs their toolchains first)
examples: hello toolchains
	@for project in examples/*-*/; do \
		$(BIN)/fless fn build $$project || exit 1; \
	done

## bench: run the benchmarks (docs/BENCHMARKS.md); ARGS="--smoke" for a quick check
bench: $(TEST_INSTALLED)
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache *.egg-info

## wheelhouse: build the wheels a rollout copies to the boards (TARGETS="x86_64-cp311 aarch64-cp311")
TARGETS ?= $(shell uname -m)-cp311
wheelhouse: $(INSTALLED)
	$(BIN)/python scripts/wheelhouse.py --source . --out .cache/wheelhouse $(TARGETS)
