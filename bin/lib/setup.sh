# Shared set-up for bin/exchanger-up and bin/test: OS packages, the virtualenv, a running RabbitMQ.
# Sourced, not run. Works as root on Debian/Ubuntu; elsewhere it says what is missing.

EXCHANGER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${EXCHANGER_VENV:-$EXCHANGER_ROOT/.venv}"

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }

apt_install() {
  # apt-get needs root; say what to run instead of failing obscurely.
  if [ "$(id -u)" != "0" ]; then
    say "missing OS packages: $*; install them with: sudo apt-get install -y $*"
    return 1
  fi
  if [ -z "${_EXCHANGER_APT_UPDATED:-}" ]; then
    apt-get update -qq
    _EXCHANGER_APT_UPDATED=1
  fi
  # Another install running at the same time holds dpkg's lock: wait for it rather than fail.
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}

ensure_os_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing OS packages: ${missing[*]}"
    apt_install "${missing[@]}"
  fi
}

ensure_browser() {
  # The console's tests drive Debian's own Chromium through its chromedriver (/usr/bin/chromedriver):
  # a browser build downloaded at test time is neither wanted nor reachable.
  ensure_os_packages chromium chromium-driver
}

ensure_report_packages() {
  # The management report's PDF is laid out by WeasyPrint, which needs Pango and a font with wide coverage.
  ensure_os_packages libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core
}

ensure_venv() {
  # $1: pip extras to install with the package ("" or "test").
  local extras="${1:-}"
  if ! python3 -m venv --help >/dev/null 2>&1; then
    ensure_os_packages python3-venv
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtualenv in $VENV"
    python3 -m venv "$VENV"
  fi
  local spec="."
  [ -n "$extras" ] && spec=".[$extras]"
  local stamp="$VENV/.exchanger-installed-${extras:-base}"
  local digest
  digest="$(cat "$EXCHANGER_ROOT/setup.cfg" "$EXCHANGER_ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    say "installing exchanger${extras:+ with [$extras]} into the virtualenv"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    (cd "$EXCHANGER_ROOT" && "$VENV/bin/python" -m pip install -q -e "$spec")
    echo "$digest" >"$stamp"
  fi
}

rabbitmq_running() {
  rabbitmqctl -q status >/dev/null 2>&1
}

ensure_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
    say "RabbitMQ is not installed: installing rabbitmq-server"
    apt_install rabbitmq-server
  fi
  export PATH="$PATH:/usr/sbin"
  if rabbitmq_running; then
    return 0
  fi
  say "starting RabbitMQ"
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start rabbitmq-server
  else
    rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  for _ in $(seq 1 90); do
    if rabbitmq_running; then
      rabbitmqctl -q await_startup >/dev/null 2>&1 || true
      say "RabbitMQ is up"
      return 0
    fi
    sleep 1
  done
  say "RabbitMQ did not start within 90 s; see /var/log/rabbitmq/"
  return 1
}

ensure_rabbitmq_plugin() {
  # Links to peer e-ports are the broker's own shovels: the plugin must be on wherever the exchange runs.
  local plugin="$1"
  if rabbitmq-plugins -q list -e -m 2>/dev/null | grep -qx "$plugin"; then
    return 0
  fi
  say "enabling the RabbitMQ plugin $plugin"
  rabbitmq-plugins -q enable "$plugin" >/dev/null
}

ensure_postgresql() {
  # The message-log tests run against a real PostgreSQL: install it when missing, start it when
  # stopped, and give the tests a role and database of their own (password login on 127.0.0.1).
  if ! command -v pg_lsclusters >/dev/null 2>&1; then
    say "PostgreSQL is not installed: installing postgresql"
    apt_install postgresql
  fi
  local cluster
  cluster="$(pg_lsclusters --no-header 2>/dev/null | head -n 1)"
  if [ -z "$cluster" ]; then
    say "no PostgreSQL cluster: creating one"
    pg_createcluster "$(ls /usr/lib/postgresql | sort -n | tail -n 1)" main >/dev/null
    cluster="$(pg_lsclusters --no-header | head -n 1)"
  fi
  set -- $cluster
  if [ "$4" != "online" ]; then
    say "starting PostgreSQL $1/$2"
    pg_ctlcluster --skip-systemctl-redirect "$1" "$2" start
  fi
  local port="$3"
  runuser -u postgres -- psql -q -p "$port" -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'exchanger_test'" | grep -q 1 \
    || runuser -u postgres -- psql -q -p "$port" -c "CREATE ROLE exchanger_test LOGIN CREATEDB PASSWORD 'exchanger_test'" >/dev/null
  runuser -u postgres -- psql -q -p "$port" -tAc "SELECT 1 FROM pg_database WHERE datname = 'exchanger_test'" | grep -q 1 \
    || runuser -u postgres -- psql -q -p "$port" -c "CREATE DATABASE exchanger_test OWNER exchanger_test" >/dev/null
  export EXCHANGER_TEST_POSTGRES_URL="${EXCHANGER_TEST_POSTGRES_URL:-postgresql://exchanger_test:exchanger_test@127.0.0.1:$port/exchanger_test}"
}

ensure_console_assets() {
  # The console's charts and styles: Chart.js and esbuild from the npm registry (package-lock.json pins them),
  # bundled into exchanger/console/static/. Rebuilt when the output is missing or older than its sources.
  local assets="$EXCHANGER_ROOT/exchanger/console/assets"
  local out="$EXCHANGER_ROOT/exchanger/console/static/dashboard.js"
  [ -d "$assets" ] || return 0
  if [ -f "$out" ] && [ -z "$(find "$assets/package.json" "$assets/package-lock.json" "$assets/src" -newer "$out" -print -quit)" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    ensure_os_packages nodejs npm
  fi
  say "building the console's scripts and styles"
  local output
  if ! output="$(cd "$assets" && npm ci --no-audit --no-fund --loglevel=error 2>&1 && npm run --silent build 2>&1)"; then
    printf '%s\n' "$output" >&2
    say "the console's scripts could not be built (see above)"
    return 1
  fi
}
