#!/usr/bin/env bash
# The frontend's contract: TypeScript types of the public schema (tables, views, RPCs) generated from
# the running database by the real Supabase CLI (`supabase gen types typescript`), formatted like the
# Edge Functions' code, into supabase/functions/_shared/database.types.ts (committed).
#   scripts/gen-types.sh          regenerate (make types), after `kamioi up` applied the migrations
#   scripts/gen-types.sh --check  fail if the committed file differs (make test)
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; source "${KAMIOI_ENV_FILE:-.env}"; set +a

out=supabase/functions/_shared/database.types.ts
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# sslmode disable: the local cluster has no TLS (the CLI would print a warning into the types).
if ! PGSSLMODE=disable node_modules/.bin/supabase gen types --lang typescript --remote="$DATABASE_URL" --schema public \
    >"$work/database.types.ts" 2>"$work/stderr"; then
  cat "$work/stderr" >&2
  exit 1
fi
.venv/bin/deno fmt --quiet --config supabase/functions/deno.json "$work/database.types.ts"

if [[ "${1:-}" == "--check" ]]; then
  if ! diff -u "$out" "$work/database.types.ts" >"$work/diff"; then
    echo "$out does not match supabase/migrations; regenerate it with \`make types\` and commit it:" >&2
    head -40 "$work/diff" >&2
    exit 1
  fi
  echo "$out matches the database"
else
  mv "$work/database.types.ts" "$out"
  echo "wrote $out"
fi
