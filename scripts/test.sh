#!/usr/bin/env bash
# The one test command (README, CI): installs what it needs on a machine with only Node 20 and npm,
# then builds, typechecks, tests (against real redis-server processes) and lints every package.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.9
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1 CI="${CI:-true}"

# Redis: tests start their own redis-server processes (single node and a 3-master cluster) on loopback.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "tollgate: installing redis-server from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
  fi
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "tollgate: redis-server is required for the tests and could not be installed" >&2
  exit 1
fi

# Chromium: the examples' ops-page test drives Debian's browser through playwright-core, which never
# downloads a browser of its own.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "tollgate: installing chromium from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
if ! command -v chromium >/dev/null 2>&1; then
  echo "tollgate: chromium is required for the ops-page test and could not be installed" >&2
  exit 1
fi

pnpm() { npx --yes "pnpm@${PNPM_VERSION}" "$@"; }

pnpm install --frozen-lockfile
rm -f .tmp/vitest-*.json
status=0
pnpm exec turbo run build typecheck test lint --concurrency=2 --continue=dependencies-successful --output-logs=new-only || status=$?
if [ "$status" != 0 ]; then
  # The failed tests' names at the end of the log, where a reader of a red run looks first.
  node scripts/summarize-tests.mjs || true
  exit "$status"
fi
# Packages as users get them: publint and attw on each packed tarball, a consumer of the tarballs installed
# outside the workspace (tsc node16/nodenext/node10, ESM and CommonJS), and the API reference with no warnings.
pnpm exec node scripts/check-packages.mjs
pnpm exec node scripts/api-docs.mjs
node scripts/summarize-tests.mjs
