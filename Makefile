# Pulseboard: `make run` serves the product on the embedded default (SQLite, no
# Redis) with a simulated demo fleet (`DEMO=0 make run` for none); `make test`
# sets up and runs the whole suite.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
HOST ?= 127.0.0.1
DEMO ?= 1

.PHONY: run test lint format clean

$(BIN)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(BIN)/.dev: requirements-dev.txt $(BIN)/.runtime
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Migrates, creates the demo admin, serves with the embedded sweeper and, unless
# DEMO=0, runs the simulator; Ctrl-C stops everything (see fleet/devserver.py).
run: $(BIN)/.runtime
	DEMO=$(DEMO) HOST=$(HOST) PORT=$(PORT) $(BIN)/python -m fleet.devserver

test: $(BIN)/.dev
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(BIN)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.dev
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) instance
