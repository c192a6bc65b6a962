# The two commands: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
PYTEST_WORKERS ?= 2

.PHONY: run test install services lint typecheck unit integration faults reliability bench bench-quick lock clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## make run: the gateway on embedded defaults (SQLite, in-process delivery and bank) on :8000
run: install
	$(BIN)/gateway dev

## make test: install, make sure PostgreSQL and RabbitMQ are up, lint, type-check, all tests
test: install services lint typecheck
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup -m "not faults"
	$(BIN)/pytest -q -m faults -p no:randomly

services:
	bash scripts/ensure-services.sh

lint: install
	$(BIN)/ruff check src tests migrations bench
	$(BIN)/ruff format --check src tests migrations bench
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy src

unit: install
	$(BIN)/pytest -q tests/unit

integration: install services
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup tests/integration

## make faults: the fault-injection suite, serially (a private RabbitMQ node on :5673)
faults: install services
	$(BIN)/pytest -q -m faults -p no:randomly

## make reliability: the fault suite, then docs/reliability.md from its results
reliability: install services
	$(BIN)/pytest -q -m faults -p no:randomly; status=$$?; \
	$(BIN)/python scripts/reliability.py && exit $$status

## make bench: every scenario of bench/run.py at full size (see docs/performance.md); bench-quick: short
bench: install services
	$(BIN)/python bench/run.py

bench-quick: install services
	$(BIN)/python bench/run.py --quick

## make lock: re-resolve the pinned versions after changing dependencies in pyproject.toml
lock:
	rm -rf /tmp/gateway-lock && $(PYTHON) -m venv /tmp/gateway-lock
	/tmp/gateway-lock/bin/pip install -q -e '.[dev]'
	/tmp/gateway-lock/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
