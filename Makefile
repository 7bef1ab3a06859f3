# Two commands do all set-up: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs/demo
# pytest-xdist workers for `make test` (the suite is timed on 2 cores; 0 runs it in this one process)
TEST_WORKERS ?= 2

.PHONY: demo test install clean benchmark

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# pip byte-compiles what it installs on one core; compileall does the same on all of them (timed in
# docs/benchmarks.md). As with pip, a file that does not compile (a package's Python 2 example) fails nothing here
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e ".[dev]"
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib src > /dev/null || true
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/smiling demo --out $(DEMO_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

benchmark: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
