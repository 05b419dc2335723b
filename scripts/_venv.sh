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

# What the tests need from Debian: the real-browser tests' Chromium and ChromeDriver
# (chromium and chromium-driver, one source, so always the same version) and valgrind (the
# instruction-count benchmark's smoke test), installed with apt-get when missing. Without
# root and without them, this stops with what to run: those tests are never skipped.
CHROMIUM="/usr/bin/chromium"
CHROMEDRIVER="/usr/bin/chromedriver"

ensure_chromium() {
  if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ] && command -v valgrind > /dev/null; then
    return
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then
    echo "error: the status page's browser tests need Chromium and ChromeDriver" \
      "($CHROMIUM, $CHROMEDRIVER) and the benchmark's smoke test valgrind, and only root" \
      "can install them here:" >&2
    echo "  sudo apt-get install chromium chromium-driver valgrind" >&2
    exit 1
  fi
  echo "== installing chromium, chromium-driver and valgrind (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver valgrind \
    > /dev/null
}

# The tests' own PostgreSQL (tests/conftest.py, scripts/postgres.py) runs Debian's server
# binaries: installed with apt-get when missing (never skipped, as above).
ensure_postgresql() {
  if compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null; then
    return
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then
    echo "error: the tests of several servers need PostgreSQL's server binaries" \
      "(/usr/lib/postgresql/*/bin/initdb), and only root can install them here:" >&2
    echo "  sudo apt-get install postgresql" >&2
    exit 1
  fi
  echo "== installing postgresql (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql > /dev/null
}
