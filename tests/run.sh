#!/usr/bin/env bash
# Runs the whole suite. The console's own database is the PostgreSQL on localhost when one
# answers (as in CI), else SQLite; the Celery workers the tests start use the local Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p 5432 -q; then
  # A name per run: two runs at once (two checkouts, CI beside a developer) must not drop
  # each other's test database.
  export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/hacenter_run$$}"
  echo "console database: PostgreSQL on 127.0.0.1 (test database test_hacenter_run$$)"
else
  echo "console database: SQLite (no PostgreSQL answers on 127.0.0.1:5432)"
fi
export HACENTER_TEST_LOGS="${HACENTER_TEST_LOGS:-$PWD/var/test-logs}"
mkdir -p "$HACENTER_TEST_LOGS"
export DJANGO_ALLOW_ASYNC_UNSAFE=true  # Playwright's sync API runs an event loop in the test thread
exec .venv/bin/python -m pytest -q -ra --durations=15 "$@"
