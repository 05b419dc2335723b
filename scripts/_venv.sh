# Sourced by scripts/serve and scripts/check: make (or reuse) the project's own virtual
# environment in .venv and install the project into it, and (for the checks) the npm
# tools. Each reinstalls only when its manifest changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OFFICESTATUS_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

ensure_venv() {
  local extras="$1" stamp want
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
      echo "error: Python 3.11 or later is needed ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
      exit 1
    }
    "$PYTHON" -m venv "$VENV"
  fi
  stamp="$VENV/.officestatus-installed"
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) $extras"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT$extras"
    echo "$want" > "$stamp"
  fi
}

# The Node.js tools of the checks (buf, @grpc/grpc-js), pinned by package-lock.json.
ensure_node_modules() {
  local stamp="$ROOT/node_modules/.officestatus-installed" want
  want="$(sha256sum "$ROOT/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
}
