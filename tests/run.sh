#!/usr/bin/env bash
# Runs the suite, or the tests given as arguments. The console's own database is the
# PostgreSQL on localhost when one answers (as in CI), else SQLite; the Celery workers the tests
# start use the local Redis.
#
# Without arguments the suite runs as two pytest processes side by side: the systemd lab's tests
# (booted Debian containers, mostly waiting on apt and boots) with the unit tests, and
# everything else (the network-namespace lab and browser tests). The labs use separate networks and locks, and
# each process has its own test database and Celery queue, so they cannot meet.
set -euo pipefail
cd "$(dirname "$0")/.."
export HACENTER_TEST_LOGS="${HACENTER_TEST_LOGS:-$PWD/var/test-logs}"
mkdir -p "$HACENTER_TEST_LOGS"
export DJANGO_ALLOW_ASYNC_UNSAFE=true  # Playwright's sync API runs an event loop in the test thread

run_pytest() {
  local db=""
  if command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p 5432 -q; then
    # A name per process: two runs at once (the two halves, two checkouts, CI beside a
    # developer) must not drop each other's test database.
    db="postgres://postgres@127.0.0.1:5432/hacenter_run${BASHPID}"
    # pytest-django names the test database after DATABASE_URL's: say the one it will use.
    echo "console database: PostgreSQL on 127.0.0.1 (test database test_$(basename "${DATABASE_URL:-$db}"))"
  else
    echo "console database: SQLite (no PostgreSQL answers on 127.0.0.1:5432)"
  fi
  DATABASE_URL="${DATABASE_URL:-$db}" .venv/bin/python -m pytest -q -ra --durations=15 "$@"
}

if [ "$#" -gt 0 ]; then
  run_pytest "$@"
  exit
fi

mapfile -t systemd_tests < <(find tests -name 'test_*systemd*.py' | sort)
# The unit tests go with the systemd half too: that half mostly waits on apt and boots, while
# the other one waits on the network-namespace lab, whose lock makes its tests the long pole.
ignore=(--ignore=tests/unit)
for f in "${systemd_tests[@]}"; do ignore+=("--ignore=$f"); done
systemd_log="$HACENTER_TEST_LOGS/systemd-half.log"
echo "systemd lab and unit tests run beside the rest; their output: $systemd_log (printed at the end)"
run_pytest tests/unit "${systemd_tests[@]}" >"$systemd_log" 2>&1 &
systemd_pid=$!
status=0
run_pytest "${ignore[@]}" || status=$?
systemd_status=0
wait "$systemd_pid" || systemd_status=$?
echo
echo "=== systemd lab tests (exit $systemd_status) ==="
cat "$systemd_log"
if [ "$status" -ne 0 ] || [ "$systemd_status" -ne 0 ]; then
  echo "FAILED: rest of the suite exit $status, systemd lab tests exit $systemd_status"
  exit 1
fi
