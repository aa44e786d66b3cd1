#!/usr/bin/env bash
# The demo command: installs dependencies and starts the Express example API on http://127.0.0.1:${PORT:-3000}
# (memory store; set REDIS_URL=redis://127.0.0.1:6379 to share buckets through Redis).
# It prints only what the example prints (what it started, how to try it); the install's log is shown only
# if the install fails.
set -euo pipefail
cd "$(dirname "$0")/.."
pnpm() { npx --yes pnpm@10.34.9 "$@"; }

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! pnpm install --frozen-lockfile >"$log" 2>&1; then
  cat "$log" >&2
  echo "tollgate demo: installing dependencies failed (above)" >&2
  exit 1
fi
rm -f "$log"
trap - EXIT
exec npx --yes pnpm@10.34.9 --silent -C examples/express start
