#!/usr/bin/env bash
# Installs what the project needs and is missing; every step is skipped when already satisfied.
# Debian/Ubuntu, as root or with sudo. No Docker.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  postgresql-15 postgresql-contrib postgresql-15-wal2json postgresql-15-pgtap postgresql-15-cron
  postgresql-15-plpgsql-check
  libtap-parser-sourcehandler-pgtap-perl redis-server wrk python3-venv
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Node may come from elsewhere (e.g. NodeSource, whose nodejs bundles npm): only the commands matter.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
# python3-venv is only needed when the interpreter on PATH has no venv module (e.g. Debian's own python3).
if python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing=("${missing[@]/python3-venv}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Logical decoding plugins must be allow-listed since 15.19 (output_plugin_libraries): refuse older servers.
pg_version=$(/usr/lib/postgresql/15/bin/postgres --version | grep -oE '15\.[0-9]+' | head -1 | cut -d. -f2)
if [ "$pg_version" -lt 19 ]; then
  echo "PostgreSQL 15.$pg_version is too old; 15.19+ is needed (apt-get install postgresql-15)" >&2
  exit 1
fi

# Python environment: exactly uv.lock (the product, the local stack beside it, the dev tools), synced
# again only when the lock or a pyproject.toml changes. --locked refuses a lock that no longer matches
# the pyproject files instead of resolving anew, so a fresh clone installs the versions of the lock.
if [ ! -x .venv/bin/uv ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q uv==0.13.9
fi
stamp=.venv/.kamioi-installed
want=$(cat pyproject.toml local_stack/pyproject.toml uv.lock | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  UV_PROJECT_ENVIRONMENT=.venv .venv/bin/uv sync --locked --all-packages --quiet
  echo "$want" > "$stamp"
fi

# The real Supabase CLI, pinned in package.json / package-lock.json. `npm ci` installs exactly the lock
# (every platform's optional CLI binary is listed in it, npm picks this one) and fails, instead of
# rewriting it, when package.json and the lock disagree.
lock_stamp=node_modules/.kamioi-installed
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ ! -x node_modules/.bin/supabase ] || [ ! -f "$lock_stamp" ] || [ "$(cat "$lock_stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$lock_stamp"
fi
