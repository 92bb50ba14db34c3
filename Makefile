# Each target bootstraps .venv itself; it is reinstalled only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench serve clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/mnist-classifier train

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# make serve RUN=runs/NAME; without RUN, the newest run directory
serve: $(STAMP)
	$(BIN)/mnist-classifier serve $(or $(RUN),$(shell ls -td runs/*/ 2>/dev/null | head -1),runs/none)

# benchmarks/validation.py compares runs you name, so it is run by hand; benchmarks/_*.py are their shared helpers
bench: $(STAMP)
	for script in $(filter-out benchmarks/validation.py benchmarks/_%.py,$(wildcard benchmarks/*.py)); do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
