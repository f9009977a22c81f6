#!/usr/bin/env bash
# The whole suite, as the README's second command and .ci/run run it: first the modules that restart Redis servers
# or time answers closely (the serial marker, tests/conftest.py), alone and in order; then everything else on three
# processes (pytest.ini). Both parts always run; the exit status is the first failure's. Arguments go to both
# (e.g. -x); a part that selects no test (pytest's exit status 5) is not a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
run() {
  .venv/bin/python -m pytest -q "$@"
  local result=$?
  if [ "$result" -ne 0 ] && [ "$result" -ne 5 ] && [ "$status" -eq 0 ]; then status=$result; fi
}
run -n 0 -m serial "$@"
run -m "not serial" "$@"
exit "$status"
