# The two front-door commands: `make run` starts the receiver, `make test` runs every test.
# Each creates (or reuses) the virtual environment in .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# setuptools warns at every editable install that a folder named like the package may
# shadow it: we install this very checkout on purpose, so the banner says nothing new.
EDITABLE := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e

.PHONY: run test lint bench container-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The compiled receive path (setup.py) is rebuilt when a .pyx, a .pxd or the build changes; with
# OXIDICOM_NO_EXTENSIONS=1 set, or no C compiler, the pure-Python twins serve instead.
BUILD_INPUTS := pyproject.toml setup.py $(shell find oxidicom -name '*.pyx' -o -name '*.pxd' 2>/dev/null)

$(VENV)/.runtime-installed: $(BUILD_INPUTS) | $(BIN)/python
	$(EDITABLE) .
	touch $@

$(VENV)/.test-installed: $(BUILD_INPUTS) | $(BIN)/python
	$(EDITABLE) '.[test]'
	touch $@ $(VENV)/.runtime-installed

$(VENV)/.bench-installed: $(BUILD_INPUTS) | $(BIN)/python
	$(EDITABLE) '.[test,bench]'
	touch $@ $(VENV)/.test-installed $(VENV)/.runtime-installed

run: $(VENV)/.runtime-installed
	$(BIN)/oxidicom

test: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The flood against dcmtk and pynetdicom; needs dcmtk. How long it takes: docs/performance.md.
bench: $(VENV)/.bench-installed
	$(BIN)/python -m benches.flood --nagle --out-dir /dev/shm/oxidicom-bench-out

# The Dockerfile built and run by podman (tests/container/test_image.py): a minute, root,
# apt-get install podman buildah debootstrap runc; `make test` skips it.
container-test: $(VENV)/.test-installed
	OXIDICOM_CONTAINER_TEST=1 $(BIN)/python -m pytest tests/container -v $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
