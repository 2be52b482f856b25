#!/usr/bin/env bash
# Checks, lints and tests the Edge Functions against the running local stack (`kamioi up`).
# Env comes from the stack's .env ($KAMIOI_ENV_FILE, default <repo>/.env). npm packages are cached
# in <repo>/.local/deno (git-ignored) unless DENO_DIR is set; the lock file is frozen.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
env_file="${KAMIOI_ENV_FILE:-$repo/.env}"
deno="${DENO:-$repo/.venv/bin/deno}"

if [[ ! -f "$env_file" ]]; then
  echo "run-tests.sh: $env_file not found; start the stack with \`kamioi up\`" >&2
  exit 1
fi
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a
export DENO_DIR="${DENO_DIR:-$repo/.local/deno}"
# No PostgREST runs locally: RPCs go straight to Postgres, run the way PostgREST runs them.
export KAMIOI_RPC_DB_URL="${KAMIOI_RPC_DB_URL:-$DATABASE_URL}"
export KAMIOI_CLI="${KAMIOI_CLI:-$repo/.venv/bin/kamioi}"

cd "$here"
"$deno" install --frozen --entrypoint dashboard/index.ts merchant-search/index.ts tests/*.ts
bench="$repo/bench/edge_bench.ts"
"$deno" fmt --check . "$bench"
"$deno" lint . "$bench"
"$deno" check --frozen dashboard/index.ts merchant-search/index.ts tests/*.ts "$bench"
"$deno" test --frozen --allow-env --allow-net=127.0.0.1 --allow-read --allow-run="$KAMIOI_CLI" "${@:-tests/}"
