# HA Center: `make run` to try it, `make test` for the whole suite (needs root for the lab).
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test test-unit chaos lint format lock lab lab-systemd lab-down system-deps bench-setup bench-monitor bench-dashboard screenshots

# Installs exactly the lock (every package, transitive ones too, with its hashes): a changed or
# replaced file on an index fails the install instead of running. `make lock` after editing
# requirements*.txt. pip itself is not upgraded: that would be the one unhashed download.
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements.lock
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --require-hashes -r requirements.lock
	touch $@

## lock: regenerate requirements.lock from requirements-dev.txt (hashes from PyPI; pip-tools in a
## throwaway venv, so .venv gets nothing extra); then `make run` installs from it
LOCK_TOOLS := $(or $(TMPDIR),/tmp)/hacenter-lock-tools
lock:
	python3 -m venv $(LOCK_TOOLS)
	env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(LOCK_TOOLS)/bin/pip install -q pip-tools==7.7.0
	@# No machine pip config: a local mirror's extra index or wheel folder would add hashes of
	@# files PyPI does not serve, and the lock must install from PyPI anywhere.
	env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
		$(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
		--strip-extras --index-url https://pypi.org/simple --no-emit-index-url \
		--output-file requirements.lock requirements-dev.txt
	rm -rf $(LOCK_TOOLS)

## run: web + Celery worker + beat on http://127.0.0.1:$(PORT) (SQLite; Redis if it answers);
## `make run PORT=9000` for another port
PORT ?= 8000
run: $(VENV)/.installed
	mkdir -p var
	$(PY) -m hacenter.local_env
	$(PY) manage.py init_local
	@echo "HA Center on http://127.0.0.1:$(PORT)/"
	@# -e /dev/null: the settings read .env themselves, without overriding the shell; honcho's
	@# own reading of it would override the shell's variables for every process.
	@# HACENTER_PORT, not PORT: honcho sets PORT itself (5000 unless told), so the Procfile's own
	@# default (8000) holds when honcho is started by hand.
	HACENTER_PORT=$(PORT) $(VENV)/bin/honcho start -f Procfile -e /dev/null

## system-deps: the Debian packages the lab and the browser tests need (root)
system-deps:
	bash tests/system-deps.sh

## test: the whole suite, lab and browser included
test: $(VENV)/.installed system-deps
	bash tests/run.sh

## chaos: every fault 5 rounds on an async and a sync cluster (the fenced fast path's profile too);
## regenerates docs/reliability.md (rows not measured again are kept)
chaos: $(VENV)/.installed system-deps
	rm -f var/chaos/results.jsonl
	HACENTER_CHAOS_ROUNDS=$${HACENTER_CHAOS_ROUNDS:-5} bash tests/run.sh tests/chaos
	$(PY) -m tests.chaos.report var/chaos/results.jsonl docs/reliability.md

## test-unit: only the tests that need no network, no root
test-unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## lab: bring up 2 database hosts + a proxy host in network namespaces for trying the console
lab: $(VENV)/.installed system-deps
	$(PY) -m tests.lab up --nodes 2

## lab-systemd: the same hosts as bare Debian 12 servers booting systemd (nspawn); apt via the lab proxy
lab-systemd: $(VENV)/.installed system-deps
	$(PY) -m tests.lab up --kind systemd --nodes 2

## bench-setup: time setup on the lab against the bare commands (root, Redis)
bench-setup: $(VENV)/.installed system-deps
	$(PY) -m bench.setup --rounds 3

## bench-monitor: 200 simulated clusters watched by 2 workers (Redis, PostgreSQL)
bench-monitor: $(VENV)/.installed
	$(PY) -m bench.monitor --clusters 200 --seconds 60

## screenshots: regenerate docs/screenshots/*.png with the browser scenario on the lab (root, Redis)
screenshots: $(VENV)/.installed system-deps
	HACENTER_SCREENSHOTS=$(CURDIR)/docs/screenshots bash tests/run.sh tests/e2e/test_wizard_browser.py \
		tests/e2e/test_triage_browser.py tests/e2e/test_actions_browser.py tests/e2e/test_charts_browser.py \
		tests/e2e/test_console_browser.py

## bench-dashboard: the dashboard's refresh and the lag chart with 200 clusters of history (PostgreSQL)
bench-dashboard: $(VENV)/.installed
	$(PY) -m bench.dashboard --clusters 200 --hours 2

lab-down:
	$(PY) -m tests.lab down
	$(PY) -m tests.lab down --kind systemd
