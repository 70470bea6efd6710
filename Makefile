# livesinger: `make demo` sings the demo song live; `make test` runs lint, types and tests.
# Both set up everything they need first (Debian packages, .venv, Python and npm packages).

VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench lint clean

setup:
	@./scripts/setup.sh

demo: setup
	$(BIN)/livesinger demo --record demo-out

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy singer stage streams rigs mocap

test: lint
	$(BIN)/pytest -q --durations=25

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
