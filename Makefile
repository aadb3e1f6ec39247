# The two quickstart commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: help demo test lint typecheck pytest clean

help:
	@echo "make demo   - set up .venv (edge + api, no torch) and run the end-to-end demo"
	@echo "make test   - set up .venv with everything (torch, ultralytics) and run ruff, mypy and pytest"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Light install for the demo and the edge: no torch, no ultralytics.
$(VENV)/.stamp-light: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[edge,api]'
	@touch $@

$(VENV)/.stamp-all: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[all]'
	@touch $@ $(VENV)/.stamp-light

demo: $(VENV)/.stamp-light
	$(BIN)/flockid demo $(DEMO_ARGS)

lint: $(VENV)/.stamp-all
	$(BIN)/ruff check .

typecheck: $(VENV)/.stamp-all
	$(BIN)/mypy vision edge api datasets training flockid

pytest: $(VENV)/.stamp-all
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
