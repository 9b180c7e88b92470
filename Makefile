# clusterhub developer entry points (GNU make).
#   make run    serve every installed service on the embedded SQLite store (./var/), demo data loaded
#   make test   the whole suite, on SQLite and on a throw-away PostgreSQL 15 server
#   make bench  the benchmarks in bench/ (by hand; not part of `make test`)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCRATCH := var/make-test.db
SERVE_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install run test postgres-binaries bench clean

install: $(STAMP)

# The stamp keeps re-runs instant; a changed pyproject.toml reinstalls.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

run: install
	$(BIN)/clusterhub serve $(SERVE_ARGS)

# The tests start their own PostgreSQL server; they need only its binaries (Debian's package).
# PostgreSQL cannot be skipped: without it the run fails.
postgres-binaries:
	@if command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "error: the tests need PostgreSQL 15 (initdb not found): sudo apt-get install -y postgresql" >&2; exit 1; \
	fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -q postgresql || { apt-get update -q && apt-get install -y -q postgresql; }

# The scratch store proves the command line sets up a store from nothing before the suite runs.
test: install postgres-binaries
	rm -f $(SCRATCH) $(SCRATCH)-wal $(SCRATCH)-shm
	$(BIN)/clusterhub --database-url sqlite:///./$(SCRATCH) db upgrade
	$(BIN)/clusterhub --database-url sqlite:///./$(SCRATCH) seed demo
	$(BIN)/clusterhub --database-url sqlite:///./$(SCRATCH) audit verify
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: install postgres-binaries
	for script in $(wildcard bench/*.py); do echo "== $$script"; $(BIN)/python $$script --json; done

clean:
	rm -rf var $(VENV)
