# The two README commands: `make test` and `make demo`.
# The virtual environment is (re)built only when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo_output
# the slowest tests and fixtures, printed at the end (where CI's log shows them)
PYTEST_ARGS ?= --durations=30
# pytest-xdist workers: the usable cores, at most 4 (each worker holds its own JAX/PyMC)
JOBS ?= $(shell $(PYTHON) -c 'import os; print(min(4, len(os.sched_getaffinity(0))))')
PYTEST := $(VENV)/bin/python -m pytest -n $(JOBS) --dist loadfile

.PHONY: test test-quick test-all demo venv lint clean mutation

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "alsprog needs Python >= 3.11"'
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	@touch $(STAMP)

test: $(STAMP)
	$(PYTEST) $(PYTEST_ARGS)

# the edit-test loop: small data, few draws (slow and veryslow studies left out)
test-quick: $(STAMP)
	$(PYTEST) -m "not slow and not veryslow" $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PYTEST) -m "" $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/alsprog demo --out $(DEMO_OUT)

# mutation testing of the statistical core (mutmut 3; about 5-20 minutes a module on
# 2 cores); not part of `make test`. MODULES="alsprog/data/_scoring.py" for one.
MODULES ?=
mutation: $(STAMP)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e ".[mutation]"
	$(VENV)/bin/python scripts/mutation.py $(MODULES) --jobs $(JOBS)

lint: $(STAMP)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(VENV)/bin/ruff format --check alsprog tests benchmarks examples
	$(VENV)/bin/ruff check alsprog tests benchmarks examples

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mutation
