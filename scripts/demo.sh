#!/usr/bin/env bash
# The demo command: installs, builds and starts the Express example API on http://127.0.0.1:${PORT:-3000}.
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1
pnpm() { npx --yes pnpm@10.34.9 "$@"; }
pnpm install --frozen-lockfile
pnpm exec turbo run build --filter=@tollgate/example-express... --output-logs=errors-only
exec npx --yes pnpm@10.34.9 -C examples/express start
