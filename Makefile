# Each target bootstraps .venv itself; it is reinstalled only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest

.PHONY: run lint test test-all bench docs serve models drawn-sets clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,docs,mlflow,ray]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/mnist-classifier train

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/mypy src
	$(BIN)/lint-imports

# The fast tier: no real training, no processes or servers (tests/conftest.py says how a test's tier is decided).
test: lint
	$(PYTEST) -m "not slow and not integration"

# Every test (fast, slow and integration tiers), generated inputs at full size, and the docs site: what CI runs.
test-all: lint
	$(BIN)/mkdocs build --strict
	$(PYTEST) --hypothesis-profile=full --durations=25

docs: $(STAMP)
	$(BIN)/mkdocs serve

# make serve RUN=runs/NAME; without RUN, the newest run directory, else the bundled fast CNN
serve: $(STAMP)
	$(BIN)/mnist-classifier serve $(or $(RUN),$(shell ls -td runs/*/ 2>/dev/null | head -1))

# Retrain the bundled models (src/mnist_classifier/bundled/) by their recorded command and seed, with the presets as
# they are now, and rewrite their files, manifests, model cards and docs pages (tools/bundle_models.py; NAMES=cnn-fast)
models: $(STAMP)
	$(BIN)/python tools/bundle_models.py $(NAMES)

# the image sets a run on MNIST's own split draws, shipped in the package so that a first run draws none
drawn-sets: $(STAMP)
	$(BIN)/python tools/ship_drawn_sets.py

# benchmarks/validation.py compares runs you name, so it is run by hand; benchmarks/_*.py are their shared helpers
bench: $(STAMP)
	for script in $(filter-out benchmarks/validation.py benchmarks/_%.py,$(wildcard benchmarks/*.py)); do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) runs site .pytest_cache .mypy_cache .ruff_cache
