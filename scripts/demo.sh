#!/usr/bin/env bash
# The demo command: installs dependencies and starts the Express example API on http://127.0.0.1:${PORT:-3000}
# (memory store; set REDIS_URL=redis://127.0.0.1:6379 to share buckets through Redis).
set -euo pipefail
cd "$(dirname "$0")/.."
npx --yes pnpm@10.34.9 install --frozen-lockfile
exec npx --yes pnpm@10.34.9 -C examples/express start
