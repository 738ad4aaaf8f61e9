# The project's two commands: `make demo` and `make test`. Each sets up .venv by itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint install bench clean

demo: $(STAMP)
	$(VENV)/bin/gentool-router demo

# lint first: a style or type error fails the run before the (long) suite starts
test: lint
	$(PY) -m pytest --durations=15

# the unit tier: the tests that load no model (`slow` ones load the embedder, the llama.cpp selector or the base
# model, or train; tests/conftest.py marks every test using a model fixture)
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy gentool_router

install: $(STAMP)

# torch first, pinned: the CPU build that pip finds on this machine's disk (any other request pulls a CUDA build).
$(STAMP): pyproject.toml scripts/install-llama-cpp.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	bash scripts/install-llama-cpp.sh $(VENV)
	$(PY) -m pip install --quiet -e ".[dev,train]"
	touch $(STAMP)

bench: $(STAMP)
	$(PY) benchmarks/bench_route.py

clean:
	rm -rf $(VENV) build *.egg-info
