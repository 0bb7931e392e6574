# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ACCOUNTS ?= 5000
OUT    ?= out
# The partition and routing cores are numba-compiled on first use (about 45 s and 35 s of one core),
# cached on disk next to the sources; compiled here, side by side, so that the first plan's time
# budget goes to planning.
COMPILE = echo "Compiling the partition and routing kernels (once)..."; \
	$(BIN)/python -c "from solvers.routing.cycle import warm_up; warm_up()" & pid=$$!; \
	$(BIN)/python -c "from solvers.partition import warm_up; warm_up()" && wait $$pid
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS="-m slow"`.
PYTEST_ARGS ?=

.PHONY: demo test bench fuzz lint clean venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

venv: $(BIN)/python

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[viz,excel]"
	@$(COMPILE)
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@$(COMPILE)
	touch $@ $(VENV)/.demo-installed

$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	@$(COMPILE)
	touch $@ $(VENV)/.dev-installed $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/territory demo --accounts $(ACCOUNTS) --out $(OUT)

test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check territory solvers tests benchmarks examples scripts

# The long fuzz run (>= 10,000 examples over tests/fuzz; `make test` runs the short one).
fuzz: $(VENV)/.dev-installed
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest tests/fuzz -p no:cacheprovider \
		--hypothesis-show-statistics -q $(PYTEST_ARGS)

bench: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(OUT) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
