#!/usr/bin/env bash
# Supabase's own checks against the local database, with the Supabase CLI pinned in package.json:
#   supabase db advisors  splinter's lints, the dashboard's Security and Performance Advisor
#   supabase db lint      plpgsql_check over every PL/pgSQL function
# Fails on any advisor at WARN or ERROR and on any lint warning or error, naming each object to fix.
# The INFO advisors that stay, and why: docs/advisors.md.
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; source "${KAMIOI_ENV_FILE:-.env}"; set +a

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PGSSLMODE=disable  # the local cluster has no TLS
cli=node_modules/.bin/supabase

# The superuser's URL: a custom URL is linted as the CLI's own SET SESSION ROLE postgres, as on a hosted
# project. The lint calls plpgsql_check unqualified, so its schema (extensions, where the bootstrap
# creates it) goes on the search_path, as Supabase's roles have it.
"$cli" db advisors --remote="$SUPERUSER_DATABASE_URL" --level warn --output-format json \
  >"$work/advisors.json" 2>"$work/advisors.err" || { cat "$work/advisors.err" "$work/advisors.json" >&2; exit 1; }
"$cli" db lint --remote="${SUPERUSER_DATABASE_URL}?search_path=public,extensions" --level warning \
  --output-format json >"$work/lint.json" 2>"$work/lint.err" || true

.venv/bin/python - "$work/advisors.json" "$work/lint.json" "$work/lint.err" <<'PY'
import json
import sys

advisors_file, lint_file, lint_err = sys.argv[1:]
failed = False

advisors = json.load(open(advisors_file))["results"]
print(f"supabase db advisors --level warn: {len(advisors)} finding(s)")
for row in advisors:
    failed = True
    print(f"  {row['level']} {row['name']}: {row['detail']}\n      fix: {row['remediation']}")

lint = json.load(open(lint_file))
if "results" not in lint:
    print(f"supabase db lint did not run: {lint.get('error', lint)}\n{open(lint_err).read()}", file=sys.stderr)
    print("plpgsql_check missing? scripts/install.sh installs postgresql-15-plpgsql-check and `kamioi up` "
          "creates the extension", file=sys.stderr)
    sys.exit(1)
issues = [(row["function"], issue) for row in lint["results"] for issue in row.get("issues", [])]
print(f"supabase db lint --level warning: {len(issues)} issue(s)")
for function, issue in issues:
    failed = True
    where = f" (line {issue['statement']['lineNumber']})" if issue.get("statement") else ""
    detail = f": {issue['detail']}" if issue.get("detail") else ""
    print(f"  {issue['level']} in {function}{where}: {issue['message']}{detail}")

sys.exit(1 if failed else 0)
PY
