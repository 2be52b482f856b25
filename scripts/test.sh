#!/usr/bin/env bash
# Runs every suite against the running local stack (make test brings it up first).
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; source "${KAMIOI_ENV_FILE:-.env}"; set +a

echo "== locks (uv.lock matches the pyproject files; package-lock.json matches package.json)"
.venv/bin/uv lock --check --quiet || { echo "uv.lock is out of date: run .venv/bin/uv lock and commit it" >&2; exit 1; }
npm ci --dry-run --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null \
  || { echo "package-lock.json does not match package.json: run npm install and commit the lock" >&2; exit 1; }

echo "== lint (ruff, mypy)"
.venv/bin/ruff check .
.venv/bin/mypy kamioi api jobs cli local_stack tests bench

echo "== TypeScript types of the public schema (supabase gen types; make types regenerates them)"
scripts/gen-types.sh --check

echo "== Supabase advisors and plpgsql_check (supabase db advisors, supabase db lint; INFO rows that stay: docs/advisors.md)"
scripts/advisors.sh

echo "== pgTAP (pg_prove)"
# supabase test db does the same: pgTAP lives in the extensions schema, tests run as the superuser.
# The worker is paused meanwhile: jobs it runs (mapping after earlier imports) would move the numbers
# the stats tests compare.
psql "$SUPERUSER_DATABASE_URL" -qc "create extension if not exists pgtap with schema extensions" >/dev/null
.venv/bin/kamioi paused -- pg_prove --ext .sql -r -d "$SUPERUSER_DATABASE_URL" supabase/tests

echo "== Edge Functions (deno fmt, lint, check, test)"
supabase/functions/run-tests.sh

# pytest last: its closing line is the run's summary.
echo "== pytest"
.venv/bin/pytest -q "$@"
