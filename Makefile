# make test: create .venv on first use, install the project with its test
# extras, then lint, type-check and run the whole suite.
# make serve: the same install, then the DNS demo server on its embedded zone.
# make docs: the user guide and API reference in docs/_build/html (warnings are errors;
# make test builds them too, in tests/test_docs.py).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test serve lint typecheck pytest docs bench fuzz mutation clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes (new dependencies, new extras), or the C
# accelerator does (pip install -e compiles framing/_speedups.c in place, via setup.py).
$(STAMP): pyproject.toml setup.py framing/_speedups.c | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check framing protocols examples tests benchmarks fuzz docs
	$(BIN)/ruff format --check framing protocols examples tests benchmarks fuzz docs

typecheck: $(STAMP)
	$(BIN)/mypy --strict framing protocols examples fuzz

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

serve: $(STAMP)
	$(BIN)/framing dns

# make fuzz: every atheris target, FUZZ_SECONDS in all (make test runs them briefly).
FUZZ_SECONDS ?= 3600
fuzz: $(STAMP)
	$(BIN)/python -m fuzz.run --seconds $(FUZZ_SECONDS)

# make mutation: mutmut over framing/ (long: see docs/ROBUSTNESS.md for the score).
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,mutation]'
	$(BIN)/mutmut run --max-children 2; $(BIN)/mutmut results

# make bench: benchmarks against the peers in their own .venv-bench;
# BENCH=decode,scaling,echo,dns,axfr,scale,conns runs a subset (see benchmarks/README.md).
bench:
	PYTHON=$(PYTHON) bash benchmarks/run.sh

clean:
	rm -rf $(VENV) .venv-bench docs/_build benchmarks/.build .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist framing/_speedups.*.so
