# Two entry points (README): `make run` and `make test`. Each creates .venv when missing and
# installs what it needs, so a fresh machine needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.keyong-installed

.PHONY: run test install lint format bench clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install whenever the declared dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

install: $(STAMP)

# The demo runs once on a fresh home (a rerun keeps it; `keyong demo --reset` starts over), then the
# server with one supervised worker, so jobs submitted in the console run and get their verdicts.
run: $(STAMP)
	$(BIN)/keyong demo
	$(BIN)/keyong serve --workers 1

# The console's browser tests drive Debian's chromium (no browser download), with CJK fonts so failure
# screenshots show the Chinese pages; installed here when missing.
chromium:
	@(command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "noto sans cjk") || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk)

test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	KEYONG_REQUIRE_BROWSER=1 $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/synthetic_bench.py

clean:
	rm -rf $(VENV) .keyong .pytest_cache .ruff_cache build *.egg-info
