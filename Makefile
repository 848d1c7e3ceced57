# Two commands a newcomer needs:  `make demo`  and  `make test`.
# Both create .venv, install the project (compiling the Cython core) and its tools.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test quick bench lint build clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# build requirements in the venv itself, so `make build` can recompile in place
	$(PY) -m pip install --quiet "setuptools>=68" wheel "cython>=3.0.10" "numpy>=1.26" "pyzmq>=26.0"
	# the ccxt extra too: the ccxt gateway's tests run against the simulator
	OMS_NO_EXTENSIONS=1 $(PY) -m pip install --quiet --no-build-isolation -e ".[dev,ccxt]"
	touch $(STAMP)

# Recompile changed .pyx in place (cheap when nothing changed).
build: $(STAMP)
	$(PY) setup.py -q build_ext --inplace

demo: build
	$(PY) -m oms_core.cli demo

# Everything CI runs: unit + integration + slow fault tests + a smoke run of every benchmark.
test: build
	$(PY) -m ruff check .
	$(PY) -m pytest -m "" -q
	$(PY) -m benchmarks.run --smoke

# The fast inner loop: no slow tests, no benchmarks.
quick: build
	$(PY) -m pytest -q

# Full benchmarks: prints ns/op, percentiles and ratios, exits non-zero when a target is missed.
bench: build
	$(PY) -m benchmarks.run

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf build $(VENV) *.egg-info
	find oms_core gateways bindings -name '*.so' -delete -o -name '*.c' ! -path '*/includes/*' ! -path 'bindings/c/*' -delete
