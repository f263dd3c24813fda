# Two entry points that work on a fresh machine with only Python:
#   make demo  — install, then build a pyramid and a rechunked copy of a sample volume through an fq:// queue
#   make test  — install with test dependencies, lint, and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv install install-test demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	VENV=$(VENV) PYTHON=$(PYTHON) .ci/install-tools.sh

demo: install
	$(BIN)/python examples/demo.py --out demo-output

lint: install-test
	$(BIN)/ruff check .

test: install-test lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) demo-output benchmarks/results
