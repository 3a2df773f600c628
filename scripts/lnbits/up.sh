#!/usr/bin/env bash
# Installs LNbits 1.6.2 (once) and starts a throw-away instance with the FakeWallet funding source.
#
#   scripts/lnbits/up.sh [--port PORT] [--parent-pid PID] [--venv DIR]
#
#   --port PORT        loopback port to listen on (default: $L402_LNBITS_PORT, else a free one)
#   --parent-pid PID   stop LNbits when this process exits (default: $L402_PARENT_PID; none: it
#                      runs until killed by its pid)
#   --venv DIR         where LNbits is installed (default: $L402_LNBITS_VENV, else
#                      <repo>/target/lnbits/venv)
#
# Prints ONE JSON line on stdout once LNbits answers and is provisioned:
#   {"url": "http://127.0.0.1:PORT", "pid": N, "data_dir": "...", "log": ".../lnbits.log",
#    "admin_token": "<super user JWT>",
#    "payee": {"id": "<wallet id>", "inkey": "...", "adminkey": "..."},
#    "payer": {"id": "...", "inkey": "...", "adminkey": "..."}}
# The payer holds 1 000 000 sat; the payee starts empty. Everything else goes to stderr.
#
# Install: a venv with lnbits==1.6.2 and bitstring<5 (bitstring 5 breaks bolt11's import). It is
# idempotent: a stamp file naming the versions and the interpreter is written last, and concurrent
# runs are serialised with flock, so a second run returns from the install step at once.
#
# Start (see INTEROP.md §1.2): uvicorn runs directly (one process, one pid to kill) from a run
# directory holding a `lnbits` symlink to the package (LNbits serves ./lnbits/static relative to
# its working directory), under `env -i` (settings also load from the environment and ./.env), with
# a FRESH data directory (with the admin UI on, settings are copied into the database on the
# first start and later environment changes are ignored).
#
# Stop: kill the pid. With a parent pid, a watchdog (its own session, so a Ctrl-C to the test
# does not take it down first) polls the parent twice a second; once the parent is gone (or is a
# different process with the same pid) it stops LNbits (TERM, then KILL after 10 s) and deletes
# the data directory (kept when L402_LNBITS_KEEP=1).
#
# Only PyPI is needed. Readiness waits up to $L402_LNBITS_READY_TIMEOUT seconds (default 120):
# a fresh start takes ~4 s on an idle machine and ~13 s on a busy one.
set -euo pipefail
script_t0=$(date +%s.%N)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

LNBITS_VERSION=1.6.2
BITSTRING_SPEC='bitstring<5'

log() { echo "lnbits-up: $*" >&2; }
die() { echo "lnbits-up: ERROR: $*" >&2; exit 1; }

PORT=${L402_LNBITS_PORT:-}
PARENT=${L402_PARENT_PID:-}
VENV=${L402_LNBITS_VENV:-$repo/target/lnbits/venv}
READY_TIMEOUT=${L402_LNBITS_READY_TIMEOUT:-120}
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT=${2:?--port needs a value}; shift 2 ;;
    --parent-pid) PARENT=${2:?--parent-pid needs a value}; shift 2 ;;
    --venv) VENV=${2:?--venv needs a value}; shift 2 ;;
    -h|--help) sed -n '2,36p' "$0" >&2; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[ -z "$PORT" ] || [[ "$PORT" =~ ^[0-9]+$ ]] || die "--port must be a number, not '$PORT'"
[ -z "$PARENT" ] || [[ "$PARENT" =~ ^[0-9]+$ ]] || die "--parent-pid must be a number, not '$PARENT'"
[ -z "$PARENT" ] || kill -0 "$PARENT" 2>/dev/null || die "parent pid $PARENT is not running"

command -v python3 >/dev/null || die "python3 not found"
command -v curl >/dev/null || die "curl not found"
command -v flock >/dev/null || die "flock not found (util-linux)"
command -v setsid >/dev/null || die "setsid not found (util-linux)"

# --- install -------------------------------------------------------------------------------------
mkdir -p "$(dirname "$VENV")"
stamp="lnbits==$LNBITS_VERSION $BITSTRING_SPEC $(python3 --version 2>&1)"
ready() { [ -f "$VENV/.ready" ] && [ "$(cat "$VENV/.ready")" = "$stamp" ]; }
if ! ready; then
  exec 9>"$VENV.lock"
  flock 9                    # another up.sh may be installing into the same venv
  if ready; then
    log "installed by a concurrent run"
  else
    start=$(date +%s)
    log "installing lnbits==$LNBITS_VERSION into $VENV (takes about a minute)"
    if [ -e "$VENV" ]; then
      # Only ever replace a venv (an older install): never delete another directory named by --venv.
      [ -f "$VENV/pyvenv.cfg" ] || die "$VENV exists and is not a Python venv; not touching it"
      rm -rf "$VENV"
    fi
    python3 -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] < (3, 13)))' \
      || die "LNbits $LNBITS_VERSION needs Python >=3.10,<3.13; python3 is $(python3 --version 2>&1)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "lnbits==$LNBITS_VERSION" "$BITSTRING_SPEC" >&2
    # Importing lnbits creates ./data: check from a scratch directory, with a clean environment.
    check_dir=$(mktemp -d)
    (cd "$check_dir" && env -i PATH=/usr/bin:/bin HOME="$check_dir" "$VENV/bin/python" -c 'import bolt11, lnbits.app') \
      || { rm -rf "$check_dir"; die "lnbits does not import after the install"; }
    rm -rf "$check_dir"
    echo "$stamp" >"$VENV/.ready"
    log "installed in $(( $(date +%s) - start )) s"
  fi
  exec 9>&-
fi

# --- start ---------------------------------------------------------------------------------------
runs=$(dirname "$VENV")/runs
mkdir -p "$runs"
DATA=$(mktemp -d "$runs/data.XXXXXX")
RUN=$DATA/run
LOG=$DATA/lnbits.log
mkdir -p "$RUN" "$DATA/ext/extensions"
# find_spec locates the package without running it (importing lnbits creates ./data in the CWD).
PKG=$("$VENV/bin/python" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("lnbits").origin))')
ln -s "$PKG" "$RUN/lnbits"
log "data dir $DATA"
log "log $LOG"

# Whether a process runs: exists and is not a zombie (`kill -0` succeeds on zombies, and uvicorn
# is this script's child until it exits).
running() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # shellcheck disable=SC2086 # split the fields after "(comm) "; they hold no glob characters
  set -- ${s##*) }
  [ "$1" != Z ]
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts uvicorn in the background; sets PID.
start_lnbits() {
  local su
  su=$(python3 -c 'import uuid; print(uuid.uuid4().hex)')
  (
    cd "$RUN"
    exec env -i PATH=/usr/bin:/bin HOME="$RUN" LANG=C.UTF-8 \
      LNBITS_DATA_FOLDER="$DATA" LNBITS_EXTENSIONS_PATH="$DATA/ext" \
      LNBITS_BACKEND_WALLET_CLASS=FakeWallet LNBITS_ADMIN_UI=true SUPER_USER="$su" \
      AUTH_HTTPS_ONLY=false LNBITS_PRICE_AGGREGATOR_ENABLED=false LNBITS_EXCHANGE_RATE_PROVIDERS='[]' \
      LNBITS_EXTENSIONS_MANIFESTS='[]' LNBITS_WASM_EXTENSIONS_MANIFESTS='[]' \
      "$VENV/bin/uvicorn" lnbits.__main__:app --host 127.0.0.1 --port "$PORT" \
      </dev/null >>"$LOG" 2>&1
  ) &
  PID=$!
}

fail() {
  log "$1"
  if [ -f "$LOG" ]; then
    echo "lnbits-up: --- last 40 lines of $LOG ---" >&2
    tail -n 40 "$LOG" >&2 || true
  fi
  exit 1
}

# --- watchdog ------------------------------------------------------------------------------------
# Started before LNbits, so a parent killed during the startup is covered too. It reads the pid
# from $DATA/pid (a retry on another port replaces it) and returns only once the parent is gone.
proc_start() {  # the start time of a process (field 22 of /proc/PID/stat; comm may hold spaces)
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # shellcheck disable=SC2086 # as in running()
  set -- ${s##*) }
  echo "${20}"
}
if [ -n "$PARENT" ]; then
  parent_start=$(proc_start "$PARENT") || die "parent pid $PARENT is not running"
  # shellcheck disable=SC2016 # the program is expanded by the inner bash
  setsid bash -c '
    parent=$1 parent_start=$2 data=$3 keep=$4
    alive() {
      local s
      s=$(cat "/proc/$parent/stat" 2>/dev/null) || return 1
      set -- ${s##*) }
      # $1 is the state (Z: exited, not yet reaped); a recycled pid has another start time
      [ "$1" != Z ] && [ "${20}" = "$parent_start" ]
    }
    running() {
      local s
      s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
      set -- ${s##*) }
      [ "$1" != Z ]
    }
    while alive; do sleep 0.5; done
    pid=$(cat "$data/pid" 2>/dev/null || true)
    if [ -n "$pid" ] && running "$pid"; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 1 100); do running "$pid" || break; sleep 0.1; done
      running "$pid" && kill -KILL "$pid" 2>/dev/null
    fi
    [ "$keep" = 1 ] || rm -rf "$data"
  ' lnbits-watchdog "$PARENT" "$parent_start" "$DATA" "${L402_LNBITS_KEEP:-}" \
    </dev/null >/dev/null 2>&1 &
  log "watchdog: LNbits stops when pid $PARENT exits"
fi

# If this script fails or is interrupted before printing the JSON line, LNbits goes with it.
PID=
done_ok=
cleanup() {
  [ -n "$done_ok" ] && return
  if [ -n "$PID" ]; then kill -KILL "$PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# A port picked by us may be taken before uvicorn binds it: try a few.
fixed_port=$PORT
for attempt in 1 2 3; do
  [ -n "$fixed_port" ] || PORT=$(free_port)
  t0=$(date +%s.%N)
  start_lnbits
  echo "$PID" >"$DATA/pid"
  url="http://127.0.0.1:$PORT"
  up=
  deadline=$(( $(date +%s) + READY_TIMEOUT ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    # Checked first: if our uvicorn died, whatever answers on the port is not it.
    running "$PID" || break
    # Before the first-install step every path answers 307 -> /first_install: any status will do.
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url/api/v1/health" || true)
    if [ "$code" != 000 ]; then up=1; break; fi
    sleep 0.1
  done
  [ -n "$up" ] && break
  if running "$PID"; then
    fail "LNbits did not answer on $url within $READY_TIMEOUT s"
  fi
  if [ -z "$fixed_port" ] && grep -q 'address already in use' "$LOG" && [ "$attempt" -lt 3 ]; then
    log "port $PORT was taken, trying another"
    continue
  fi
  fail "LNbits exited before answering on $url"
done
log "answering on $url after $(python3 -c "import time; print(round(time.time() - $t0, 1))") s (pid $PID)"

# --- provision -----------------------------------------------------------------------------------
# first install (gives the super user a password, returns a bearer token), two wallets, top-up.
if ! json=$("$VENV/bin/python" - "$url" "$PID" "$DATA" "$LOG" <<'EOF'
import json, sys, urllib.error, urllib.request

url, pid, data, log = sys.argv[1:5]

def call(method, path, body=None, key=None, bearer=None):
    req = urllib.request.Request(url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("X-Api-Key", key)
    if bearer:
        req.add_header("Authorization", "Bearer " + bearer)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path}: HTTP {e.code}: {e.read()[:300]!r}")

token = call("PUT", "/api/v1/auth/first_install",
             {"username": "admin", "password": "adminpass1", "password_repeat": "adminpass1"})["access_token"]
wallets = {n: call("POST", "/api/v1/account", {"name": n}) for n in ("payee", "payer")}
call("PUT", "/users/api/v1/balance", {"id": wallets["payer"]["id"], "amount": 1_000_000}, bearer=token)
balance = call("GET", "/api/v1/wallet", key=wallets["payer"]["inkey"])["balance"]
if balance != 1_000_000_000:
    sys.exit(f"payer balance after the top-up is {balance} msat, not 1000000000")
print(json.dumps({
    "url": url, "pid": int(pid), "data_dir": data, "log": log, "admin_token": token,
    **{n: {k: w[k] for k in ("id", "inkey", "adminkey")} for n, w in wallets.items()},
}))
EOF
); then
  fail "provisioning failed"
fi
log "provisioned; $(python3 -c "import time; print(round(time.time() - $script_t0, 1))") s since this script started"
done_ok=1
echo "$json"
