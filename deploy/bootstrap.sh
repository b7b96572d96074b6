#!/usr/bin/env bash
# Everything the project needs on a fresh Debian machine, installed once and skipped when present:
# Java and Maven (Kafka's jars come from Maven Central at first `zixly stack up`), PostgreSQL, kcat, Go (the local
# S3 endpoint is built from the Go module proxy at first `zixly stack up`), the virtualenv. With --browser also
# Debian's Chromium, which the dashboard's browser tests and benchmark drive headless, and Prometheus (its promtool
# checks the alerting rules).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
if [ "${1:-}" = "--browser" ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  # The tests check the alerting rules with promtool and watch an alert fire in a real Prometheus.
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
fi

if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]} from Debian's packages"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # The stack runs its own Postgres cluster; keep the package from starting Debian's default one on port 5432.
  policy_added=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  trap '[ -n "$policy_added" ] && $sudo rm -f /usr/sbin/policy-rc.d' EXIT
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  # pyenv's shims answer `command -v` for versions it does not have, then complain on stderr when run: quiet them.
  if command -v "$candidate" >/dev/null 2>&1 \
    && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
    python="$candidate"
    break
  fi
done
[ -n "$python" ] || { echo "bootstrap: Python 3.11 or newer is needed" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $python"
  "$python" -m venv .venv
fi
# Exactly the locked versions, each checked against its hash (requirements-dev.lock, written by `make lock`); the
# project itself goes in without resolving anything more.
stamp=".venv/.zixly-installed"
wanted="$(cat pyproject.toml requirements-dev.lock | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "bootstrap: installing Python packages from requirements-dev.lock"
  .venv/bin/python -m pip install -q --require-hashes --no-deps -r requirements-dev.lock
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  .venv/bin/python -m pip check
  echo "$wanted" > "$stamp"
fi
