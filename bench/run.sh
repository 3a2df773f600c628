#!/usr/bin/env bash
# Load harness for the l402 proxy. See BENCHMARKS.md for what it measures and the last results.
#
#   bench/run.sh              everything: criterion benches, throughput rounds, challenge minting,
#                             idle-connection memory; prints a table and writes bench/results/latest.txt
#   bench/run.sh --profile    the verified-proxying path under callgrind (short fixed load);
#                             writes bench/results/callgrind-verified-{summary,inclusive}.txt
#                             (raw profile in target/bench-profiles/)
#                             (PROFILE_TARGET=off: the auth-off path, for the difference;
#                             PROFILE_TARGET=mint: every request mints a challenge)
#   bench/run.sh --perf       a native perf profile (user + kernel) of the same paths under full
#                             load (PROFILE_TARGET=nginx: nginx's worker, same request):
#                             bench/results/perf-<target>-*.txt (PERF_CALLGRAPH=dwarf,32768
#                             records call stacks too; the raw data stays in target/bench-run)
#   bench/run.sh --massif     the heap of the verified proxy holding MASSIF_CONNS (2000) idle
#                             connections, under massif: bench/results/massif-summary.txt
#                             (the full tree in target/bench-profiles/massif-idle.txt)
#   bench/run.sh --ab         A/B of two or more builds: AB_BINS="old/l402 new/l402" are run
#                             interleaved (ROUNDS rounds, each binary auth off and verified, DURATION s
#                             each), reporting CPU µs per request of the proxy process — steadier
#                             than requests per second on a shared machine: bench/results/ab.txt
#   bench/run.sh --co         A/B of two builds at the same time: AB_BINS="a/l402 b/l402" both on
#                             SUT_CPU, each driven by its own wrk (CONNS/2 connections) on LOAD_CPU,
#                             ROUNDS rounds of DURATION s, fresh databases every round; CO_TARGET=mint
#                             (default: every request mints a challenge), verified or off; B runs
#                             CO_TARGET_B when set (one build verified against itself with auth off
#                             measures what verifying costs). The host's speed drifts by 15 % and
#                             more within minutes; two builds measured over the same seconds share
#                             the drift, so the difference of their CPU µs per request shows changes
#                             of a few µs: bench/results/co.txt (CO_PERF=1: a perf profile of each
#                             side, every round, in target/bench-run/co-ROUND-SIDE.perf)
#   bench/run.sh --idle       the memory row alone: RSS of a verified proxy holding IDLE_CONNS idle
#                             keep-alive connections, for L402_BIN or each of AB_BINS
#
# What runs (all on loopback):
#   upstream        bench/tools `upstream`: hyper, HTTP/1.1 keep-alive, 200 with a 1 KiB body
#   nginx           nginx as a plain reverse proxy to the upstream (1 worker, upstream keepalive)
#   ours auth-off   `l402 proxy`, the service with `auth: off`
#   ours verified   `l402 proxy`, `auth: on`, every request carries a valid L402 credential
#                   (4 caveats) paid once up front through the embedded dev node
# One load generator (wrk, 1 thread) drives them all, alternating, ROUNDS rounds of DURATION s,
# with the same request: the verified scenario's (its `Authorization` included; SAME_REQUEST=0
# sends it to the verified proxy only, as the reports before 2026-12-03 did). Then the same
# ROUNDS again as co-scheduled pairs (verified with nginx, verified with auth off: both servers
# loaded over the same seconds, each by its own wrk with CONNS/2 connections), whose CPU cost
# ratios do not move with the host's drift as the alternating rounds' do.
#
# CPU roles on a 2-core machine (PIN=1, the default): the server under test (SUT) runs alone on
# SUT_CPU (default 1), so every server gets exactly one core (nginx 1 worker; l402 sees one CPU
# and runs Tokio's single-threaded scheduler). wrk and the upstream behind the proxies share
# LOAD_CPU (default 0). For the "direct upstream" baseline the upstream *is* the SUT, so a
# second upstream instance runs on SUT_CPU. Each row reports the SUT's CPU use during the run:
# ~100% means the SUT was the bottleneck, as intended.
#
# Environment knobs: DURATION (10) ROUNDS (3) CONNS (64) WARMUP (3) IDLE_CONNS (10000)
# CRITERION (1: run the criterion benches) PIN (1) LOAD_CPU (0) SUT_CPU (1) PORT_BASE (18100)
# MINT_DURATION (DURATION) PROFILE_SECONDS (20) QUIET_MAX (15 %) QUIET_WAIT (300 s) L402_BIN (a prebuilt l402 binary: skips the build)
# SAME_REQUEST (1)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=${1:-all}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
WARMUP=${WARMUP:-3}
IDLE_CONNS=${IDLE_CONNS:-10000}
CRITERION=${CRITERION:-1}
PIN=${PIN:-1}
LOAD_CPU=${LOAD_CPU:-0}
SUT_CPU=${SUT_CPU:-1}
PORT_BASE=${PORT_BASE:-18100}
MINT_DURATION=${MINT_DURATION:-$DURATION}
PROFILE_SECONDS=${PROFILE_SECONDS:-20}
QUIET_MAX=${QUIET_MAX:-15}
QUIET_WAIT=${QUIET_WAIT:-300}

case "$MODE" in
  all | --profile | --massif | --perf | --ab | --co | --idle) ;;
  *) echo "usage: bench/run.sh [--profile | --massif | --perf | --ab | --co | --idle]" >&2; exit 2 ;;
esac

log() { printf '[bench] %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Tools: nginx, wrk, curl (Debian packages), valgrind for --profile; a Rust toolchain is assumed.

need_pkgs=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_pkgs+=(nginx-light)
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
if [ "$MODE" = --perf ]; then
  command -v perf >/dev/null || need_pkgs+=(linux-perf)
fi
if [ "$MODE" = --profile ] || [ "$MODE" = --massif ]; then
  command -v valgrind >/dev/null || need_pkgs+=(valgrind)
  command -v callgrind_annotate >/dev/null || need_pkgs+=(valgrind)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]} (apt-get)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ "$(nproc)" -lt 2 ]; then
  log "fewer than 2 CPUs: running unpinned"
  PIN=0
fi
pin() { # pin CPU cmd...
  local cpu=$1
  shift
  if [ "$PIN" = 1 ]; then taskset -c "$cpu" "$@"; else "$@"; fi
}

# File descriptors for 10 000 connections on each side.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
ulimit -n "$hard" || true
if [ "$(ulimit -n)" -lt $((IDLE_CONNS + 1000)) ]; then
  log "ulimit -n is $(ulimit -n): the idle-connection test gets $((IDLE_CONNS)) connections only if it is raised"
fi

# ---------------------------------------------------------------------------------------------
# Build.

cd "$ROOT"
TARGET=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
AB=()
if [ "$MODE" = --idle ] && [ -n "${AB_BINS:-}" ]; then
  read -r -a AB <<<"$AB_BINS"
  L402=${AB[0]}
elif [ "$MODE" = --ab ] || [ "$MODE" = --co ]; then
  read -r -a AB <<<"${AB_BINS:-}"
  if [ ${#AB[@]} -lt 2 ]; then
    echo "bench/run.sh $MODE: set AB_BINS to two or more l402 binaries, e.g. AB_BINS=\"/tmp/old /tmp/new\"" >&2
    exit 2
  fi
  if [ "$MODE" = --co ] && [ ${#AB[@]} != 2 ]; then
    echo "bench/run.sh --co: AB_BINS names exactly two binaries" >&2
    exit 2
  fi
  L402=${AB[0]}
elif [ -n "${L402_BIN:-}" ]; then
  L402=$L402_BIN
  log "using the prebuilt binary $L402 (L402_BIN)"
else
  # The production build (`release-lto`: fat LTO, one codegen unit; see Cargo.toml).
  log "building the release binary (cargo build --profile release-lto -p l402-cli)"
  cargo build --profile release-lto -p l402-cli >&2
  L402="$TARGET/release-lto/l402"
fi
log "building bench/tools (upstream, idle)"
CARGO_TARGET_DIR="$TARGET/bench-tools" cargo build --release --manifest-path "$ROOT/bench/tools/Cargo.toml" >&2
UPSTREAM_BIN="$TARGET/bench-tools/release/upstream"
IDLE_BIN="$TARGET/bench-tools/release/idle"
if [ "$MODE" = all ]; then
  # The same profile as the proxy's, so the baseline is built as the proxy is.
  log "building the signing-rate probe (cargo build --profile release-lto -p l402-devnode --example sign_rate)"
  cargo build --profile release-lto -p l402-devnode --example sign_rate >&2
  SIGN_BIN="$TARGET/release-lto/examples/sign_rate"
fi

RUN="$TARGET/bench-run"
rm -rf "$RUN"
mkdir -p "$RUN" "$ROOT/bench/results"

# ---------------------------------------------------------------------------------------------
# Processes: every one started here is recorded and stopped by its PID on exit.

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

spawn() { # spawn NAME CPU cmd... ; sets LAST_PID
  local name=$1 cpu=$2
  shift 2
  # A simple command in the background (not a function), so $! is the server's own PID
  # (taskset execs it).
  if [ "$PIN" = 1 ]; then set -- taskset -c "$cpu" "$@"; fi
  "$@" >"$RUN/$name.out" 2>"$RUN/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

stop() { # stop PID
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

wait_http() { # wait_http URL
  local i
  for i in $(seq 1 200); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    sleep 0.05
  done
  log "nothing answers at $1"
  return 1
}

P_UP=$((PORT_BASE + 1))        # upstream behind the proxies (LOAD_CPU)
P_UP_DIRECT=$((PORT_BASE + 2)) # upstream measured directly (SUT_CPU)
P_NGINX=$((PORT_BASE + 3))
P_OFF=$((PORT_BASE + 4))
P_ON=$((PORT_BASE + 5))
P_DEVNODE=$((PORT_BASE + 6))
P_IDLE=$((PORT_BASE + 7))
P_CO=$((PORT_BASE + 10)) # --co: proxy A, its dev node, proxy B, its dev node

for p in $P_UP $P_UP_DIRECT $P_NGINX $P_OFF $P_ON $P_DEVNODE $P_IDLE $P_CO $((P_CO + 1)) $((P_CO + 2)) $((P_CO + 3)); do
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/"; then
    log "port $p is in use: set PORT_BASE"
    exit 1
  fi
done

start_upstreams() {
  spawn upstream "$LOAD_CPU" "$UPSTREAM_BIN" "127.0.0.1:$P_UP"
  PID_UP=$LAST_PID
  spawn upstream-direct "$SUT_CPU" "$UPSTREAM_BIN" "127.0.0.1:$P_UP_DIRECT"
  PID_UP_DIRECT=$LAST_PID
  wait_http "http://127.0.0.1:$P_UP/"
  wait_http "http://127.0.0.1:$P_UP_DIRECT/"
}

start_nginx() {
  mkdir -p "$RUN/nginx/logs"
  cat >"$RUN/nginx/nginx.conf" <<EOF
user root;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/logs/error.log warn;
events { worker_connections 32768; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $RUN/nginx/body;
  proxy_temp_path $RUN/nginx/proxy;
  fastcgi_temp_path $RUN/nginx/fastcgi;
  uwsgi_temp_path $RUN/nginx/uwsgi;
  scgi_temp_path $RUN/nginx/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream up { server 127.0.0.1:$P_UP; keepalive 128; }
  server {
    listen 127.0.0.1:$P_NGINX reuseport backlog=65535;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
EOF
  spawn nginx "$SUT_CPU" "$NGINX" -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -g 'daemon off;'
  PID_NGINX=$LAST_PID
  wait_http "http://127.0.0.1:$P_NGINX/"
}

# The service as every l402 instance here configures it: 4 caveats (services, capabilities, a
# constraint, valid_until), like the criterion verify bench.
write_proxy_config() { # FILE PORT AUTH LIGHTNING STORE
  cat >"$1" <<EOF
listen: 127.0.0.1:$2
lightning: "$4"
store: "$5"
cleanup_interval: 0s
services:
  - name: weather
    upstream: http://127.0.0.1:$P_UP
    auth: $3
    price_sat: 10
    capabilities: [forecast]
    constraints: { weather_region: eu }
    token_lifetime: 24h
EOF
}

start_ours() {
  write_proxy_config "$RUN/off.yaml" "$P_OFF" off "devnode:" "sqlite:$RUN/off.db"
  spawn ours-off "$SUT_CPU" "$L402" proxy --config "$RUN/off.yaml"
  PID_OFF=$LAST_PID
  # The dev node keeps its state in a file: an in-memory dev node loses every table when a
  # request is cancelled mid-query (wrk closing its connections at the end of a run), after which
  # every mint answers 503 — see BENCHMARKS.md.
  write_proxy_config "$RUN/on.yaml" "$P_ON" on \
    "devnode:?data=$RUN/devnode.db&listen=127.0.0.1:$P_DEVNODE&wallet=shop" "sqlite:$RUN/verified.db"
  spawn ours-verified "$SUT_CPU" "$L402" proxy --config "$RUN/on.yaml"
  PID_ON=$LAST_PID
  wait_http "http://127.0.0.1:$P_OFF/"
  wait_http "http://127.0.0.1:$P_ON/"
}

# Buys a token from the verified proxy: challenge → pay through the embedded dev node's API from
# another wallet → `L402 <macaroon>:<preimage>`. Sets AUTH.
buy_token() {
  local headers line macaroon invoice paid preimage status
  headers=$(curl -s -D - -o /dev/null "http://127.0.0.1:$P_ON/forecast")
  line=$(printf '%s\n' "$headers" | tr -d '\r' | grep -i '^www-authenticate: L402 ' | head -n1)
  macaroon=$(printf '%s' "$line" | sed -E 's/.*macaroon="([^"]+)".*/\1/')
  invoice=$(printf '%s' "$line" | sed -E 's/.*invoice="([^"]+)".*/\1/')
  if [ -z "$macaroon" ] || [ -z "$invoice" ]; then
    log "no L402 challenge from the verified proxy:"
    printf '%s\n' "$headers" >&2
    exit 1
  fi
  paid=$("$L402" wallet pay "$invoice" --backend "devnode://127.0.0.1:$P_DEVNODE/client")
  preimage=$(printf '%s' "$paid" | grep -o '"preimage":"[0-9a-f]*"' | cut -d'"' -f4)
  AUTH="L402 $macaroon:$preimage"
  status=$(curl -s -o "$RUN/verified-body" -w '%{http_code}' -H "Authorization: $AUTH" \
    "http://127.0.0.1:$P_ON/forecast")
  if [ "$status" != 200 ] || [ "$(wc -c <"$RUN/verified-body")" != 1024 ]; then
    log "the paid token does not pass: HTTP $status"
    exit 1
  fi
  log "token bought: $(printf '%s' "$macaroon" | wc -c)-char macaroon, 4 caveats"
}

# ---------------------------------------------------------------------------------------------
# Measuring.

CLK_TCK=$(getconf CLK_TCK)
proc_tree() { # PID → the PID and its direct children (nginx workers)
  echo "$1"
  awk -v p="$1" '$4 == p { print $1 }' /proc/[0-9]*/stat 2>/dev/null || true
}
cpu_stat() { # CPU → "busy total" jiffies of that CPU from /proc/stat
  awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}
cpu_ticks() { # PID → utime+stime of the process and its children
  local total=0 p t
  for p in $(proc_tree "$1"); do
    t=$(awk '{ print $14 + $15 }' /proc/"$p"/stat 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}

to_us() { # "1.23ms" → 1230
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000; else m = 1
    printf "%.0f", n * m }'
}

# Other work on the machine (builds, test suites of other sessions) distorts every number. Before
# each measured run, wait (up to QUIET_WAIT s) until both CPUs were < QUIET_MAX % busy for a second.
wait_quiet() {
  local waited=0 a0 b0 a1 b1 busy
  while :; do
    a0=$(cpu_stat "$LOAD_CPU")
    b0=$(cpu_stat "$SUT_CPU")
    sleep 1
    a1=$(cpu_stat "$LOAD_CPU")
    b1=$(cpu_stat "$SUT_CPU")
    busy=$(echo "$a0 $a1 $b0 $b1" | awk '{ x = ($4 > $2) ? ($3 - $1) / ($4 - $2) * 100 : 0; y = ($8 > $6) ? ($7 - $5) / ($8 - $6) * 100 : 0; printf "%.0f", (x > y ? x : y) }')
    if [ "$busy" -lt "$QUIET_MAX" ]; then return 0; fi
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
      log "the machine is still busy ($busy% on one CPU) after ${QUIET_WAIT}s: measuring anyway"
      return 0
    fi
    [ "$waited" = 0 ] && log "waiting for the machine to be quiet (a CPU is $busy% busy with other work)"
    sleep 2
    waited=$((waited + 3))
  done
}

# run_wrk NAME URL SECONDS SUT_PID [HEADER] → appends "rps p50us p99us sut-cpu% non2xx errors
# load-core-busy% sut-core-busy% answers-402 answers-counted sut-cpu-us-per-request" (answers
# with WRK_LUA=status counter) to
# $RUN/NAME.results and prints it.
run_wrk() {
  local name=$1 url=$2 secs=$3 sut=$4 header=${5:-}
  local out="$RUN/wrk-$name-$(date +%s%N).txt" t0 t1 args
  args=(-t1 -c"$CONNS" -d"${secs}s" --latency)
  [ -n "$header" ] && args+=(-H "$header")
  [ -n "${WRK_LUA:-}" ] && args+=(-s "$WRK_LUA")
  wait_quiet
  t0=$(cpu_ticks "$sut")
  local l0 l1 s0 s1
  l0=$(cpu_stat "$LOAD_CPU")
  s0=$(cpu_stat "$SUT_CPU")
  pin "$LOAD_CPU" wrk "${args[@]}" "$url" >"$out"
  t1=$(cpu_ticks "$sut")
  l1=$(cpu_stat "$LOAD_CPU")
  s1=$(cpu_stat "$SUT_CPU")
  local rps p50 p99 non2xx errors cpu
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$out")")
  p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$out")")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $5 }' "$out")
  errors=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$out")
  cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.2f", (b - a) / hz / s * 100 }')
  local load core busy='{ if ($4 > $2) printf "%.0f", ($3 - $1) / ($4 - $2) * 100; else print 0 }'
  load=$(echo "$l0 $l1" | awk "$busy")
  core=$(echo "$s0 $s1" | awk "$busy")
  local s402 counted
  s402=$(awk '$1 == "status" && $2 == 402 { print $3 }' "$out")
  counted=$(awk '$1 == "status" { n += $3 } END { print n + 0 }' "$out")
  local us
  us=$(awk -v c="$cpu" -v r="${rps:-0}" 'BEGIN { if (r > 0) printf "%.3f", c / 100 / r * 1e6; else print 0 }')
  echo "${rps:-0} ${p50:-0} ${p99:-0} $cpu ${non2xx:-0} ${errors:-0} $load $core ${s402:-0} $counted $us" | tee -a "$RUN/$name.results"
}

# A wrk script that counts every answer by status and prints "status CODE COUNT" lines at the
# end (minting counts only 402s with a challenge; a fast 503 must not pass for a mint).
write_status_lua() {
  cat >"$RUN/status.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do io.write(string.format("status %d %d\n", k, v)) end
  end
end
LUA
}

# The header every unverified scenario sends: the verified credential (the same request to every
# server, SAME_REQUEST=1, the default) or nothing (SAME_REQUEST=0, as before 2026-12-03).
same_request() { if [ "${SAME_REQUEST:-1}" = 1 ] && [ -n "${AUTH:-}" ]; then echo "Authorization: $AUTH"; fi; }

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col_median() { # FILE COLUMN → the median over the rounds no other work disturbed (SUT core busy
  # at most 15 points above the SUT's own CPU use), or over all rounds if every one was disturbed
  local clean
  clean=$(awk '$8 - $4 <= 15' "$1" | wc -l)
  if [ "$clean" -gt 0 ]; then
    awk -v c="$2" '$8 - $4 <= 15 { print $c }' "$1" | median
  else
    awk -v c="$2" '{ print $c }' "$1" | median
  fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a / b }'; }
us_median() { col_median "$1" 11; } # FILE → median CPU µs per request of the server under test

rss_kib() { # PID FIELD(VmRSS|VmHWM) → KiB summed over the process tree
  local total=0 p v
  for p in $(proc_tree "$1"); do
    v=$(awk -v f="$2:" '$1 == f { print $2 }' /proc/"$p"/status 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

established() { # PORT → established connections to it
  ss -Htn state established "( sport = :$1 )" | wc -l
}

machine() {
  echo "cpu:      $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) CPUs)"
  echo "memory:   $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel:   $(uname -sr)"
  echo "rustc:    $(rustc --version)"
  echo "nginx:    $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
  echo "wrk:      $(wrk -v 2>&1 | head -n1 | awk '{ print $2 }')"
  echo "commit:   $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet -- . ':!bench/results' 2>/dev/null || echo ' (+ uncommitted changes)')"
}

# ---------------------------------------------------------------------------------------------
# --ab: builds against each other, interleaved. Both proxies of a build share the files of the
# others (the store and the dev node's), so the token bought once is valid for every build.

if [ "$MODE" = --ab ]; then
  start_upstreams
  write_proxy_config "$RUN/off.yaml" "$P_OFF" off "devnode:" "sqlite:$RUN/off.db"
  write_proxy_config "$RUN/on.yaml" "$P_ON" on \
    "devnode:?data=$RUN/devnode.db&listen=127.0.0.1:$P_DEVNODE&wallet=shop" "sqlite:$RUN/verified.db"
  AUTH=""
  for r in $(seq 1 "$ROUNDS"); do
    for i in "${!AB[@]}"; do
      spawn "ab$i-off" "$SUT_CPU" "${AB[$i]}" proxy --config "$RUN/off.yaml"
      PID_OFF=$LAST_PID
      spawn "ab$i-on" "$SUT_CPU" "${AB[$i]}" proxy --config "$RUN/on.yaml"
      PID_ON=$LAST_PID
      wait_http "http://127.0.0.1:$P_OFF/"
      wait_http "http://127.0.0.1:$P_ON/"
      [ -n "$AUTH" ] || buy_token
      log "round $r/$ROUNDS: ${AB[$i]}"
      SAME=$(same_request)
      run_wrk "warmup" "http://127.0.0.1:$P_OFF/forecast" "$WARMUP" "$PID_OFF" "$SAME" >/dev/null
      run_wrk "ab$i-off" "http://127.0.0.1:$P_OFF/forecast" "$DURATION" "$PID_OFF" "$SAME" >/dev/null
      run_wrk "warmup" "http://127.0.0.1:$P_ON/forecast" "$WARMUP" "$PID_ON" "Authorization: $AUTH" >/dev/null
      run_wrk "ab$i-on" "http://127.0.0.1:$P_ON/forecast" "$DURATION" "$PID_ON" "Authorization: $AUTH" >/dev/null
      stop "$PID_OFF"
      stop "$PID_ON"
    done
  done
  us() { awk '{ printf "%.2f\n", $11 }' "$1"; } # CPU µs per request
  {
    echo "l402 A/B — $(date -u '+%Y-%m-%d %H:%M UTC'), ROUNDS=$ROUNDS DURATION=${DURATION}s CONNS=$CONNS"
    machine
    echo "CPU µs per request of the proxy process (CPU time ÷ requests), each round, then the median;"
    echo "req/s medians. Server pinned to CPU $SUT_CPU, wrk and the upstream on CPU $LOAD_CPU."
    echo
    for i in "${!AB[@]}"; do
      for m in off on; do
        f="$RUN/ab$i-$m.results"
        printf '%-44s %-8s %8s µs   rounds: %s   %8.0f req/s\n' "${AB[$i]}" "$m" \
          "$(us "$f" | median)" "$(us "$f" | tr '\n' ' ')" "$(awk '{ print $1 }' "$f" | median)"
      done
    done
  } | tee "$ROOT/bench/results/ab.txt"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Idle keep-alive connections: IDLE_CONNS connections held open by bench/tools `idle`, each of
# which has served one request (verified with AUTH when given).

hold_idle() { # PORT AUTH_HEADER → "opened ok failed established"; leaves connections open via fd 7
  local fifo="$RUN/idle.fifo.$1"
  rm -f "$fifo"
  mkfifo "$fifo"
  local cmd=("$IDLE_BIN" "127.0.0.1:$1" "$IDLE_CONNS" /forecast ${2:+"$2"})
  if [ "$PIN" = 1 ]; then cmd=(taskset -c "$LOAD_CPU" "${cmd[@]}"); fi
  HOLD=600 "${cmd[@]}" <"$fifo" >"$RUN/idle-$1.out" 2>&1 &
  IDLE_PID=$!
  PIDS+=("$IDLE_PID")
  exec 7>"$fifo"
  local i
  for i in $(seq 1 600); do
    grep -q '^ready' "$RUN/idle-$1.out" 2>/dev/null && break
    sleep 0.2
  done
  sleep 2
}
release_idle() {
  exec 7>&-
  wait "$IDLE_PID" 2>/dev/null || true
}

# --idle: the memory row alone, for L402_BIN or each of AB_BINS: a fresh verified proxy (file
# store, in-memory dev node) holding IDLE_CONNS connections that each served one verified request.
if [ "$MODE" = --idle ]; then
  start_upstreams
  [ ${#AB[@]} -ge 1 ] || AB=("$L402")
  for i in "${!AB[@]}"; do
    write_proxy_config "$RUN/on.yaml" "$P_ON" on \
      "devnode:?data=$RUN/devnode.db&listen=127.0.0.1:$P_DEVNODE&wallet=shop" "sqlite:$RUN/verified-$i.db"
    spawn "idle$i-buy" "$SUT_CPU" "${AB[$i]}" proxy --config "$RUN/on.yaml"
    pid=$LAST_PID
    wait_http "http://127.0.0.1:$P_ON/"
    buy_token
    stop "$pid"
    write_proxy_config "$RUN/idle.yaml" "$P_IDLE" on "devnode:" "sqlite:$RUN/verified-$i.db"
    spawn "idle$i" "$SUT_CPU" "${AB[$i]}" proxy --config "$RUN/idle.yaml"
    pid=$LAST_PID
    wait_http "http://127.0.0.1:$P_IDLE/"
    curl -s -o /dev/null -H "Authorization: $AUTH" "http://127.0.0.1:$P_IDLE/forecast"
    sleep 1
    before=$(rss_kib "$pid" VmRSS)
    hold_idle "$P_IDLE" "Authorization: $AUTH"
    ready=$(grep '^ready' "$RUN/idle-$P_IDLE.out" || echo "ready ?")
    rss=$(rss_kib "$pid" VmRSS)
    hwm=$(rss_kib "$pid" VmHWM)
    est=$(established "$P_IDLE")
    release_idle
    stop "$pid"
    awk -v b="${AB[$i]}" -v r="$rss" -v h="$hwm" -v z="$before" -v n="$IDLE_CONNS" -v e="$est" -v y="$ready" 'BEGIN {
      printf "%-40s RSS %.1f MiB at %s idle connections (%s established; %s), peak %.1f MiB, %.1f MiB before\n", b, r / 1024, n, e, y, h / 1024, z / 1024 }'
  done
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# --co: two builds over the same seconds (see the top of this file).

if [ "$MODE" = --co ]; then
  CO_TARGET=${CO_TARGET:-mint}
  # B may run another scenario than A (CO_TARGET_B): one build verified against itself with
  # auth off measures what verifying costs, over the same seconds.
  CO_TARGET_B=${CO_TARGET_B:-$CO_TARGET}
  declare -A CO_SCEN=([0]="$CO_TARGET" [1]="$CO_TARGET_B") CO_AUTH CO_WANT
  for i in 0 1; do
    case "${CO_SCEN[$i]}" in
      mint | verified) CO_AUTH[$i]=on ;;
      off) CO_AUTH[$i]=off ;;
      *) echo "bench/run.sh --co: CO_TARGET and CO_TARGET_B are mint, verified or off, not ${CO_SCEN[$i]}" >&2; exit 2 ;;
    esac
    # The answers that count: 402s with a challenge when minting, 200s otherwise.
    CO_WANT[$i]=200
    [ "${CO_SCEN[$i]}" = mint ] && CO_WANT[$i]=402
  done
  [ "$CO_TARGET" = mint ] && [ "$CO_TARGET_B" = mint ] || start_upstreams
  half=$((CONNS / 2))
  [ "$half" -ge 1 ] || half=1
  write_status_lua
  answers() { awk -v w="${CO_WANT[$2]}" '$1 == "status" && $2 == w { print $3 }' "$1"; }
  co_wrk() { # SECONDS OUT PORT [HEADER] → wrk in the background (sets LAST_WRK)
    local args=(-t1 -c"$half" -d"$1s" -s "$RUN/status.lua")
    [ -n "${4:-}" ] && args+=(-H "$4")
    pin "$LOAD_CPU" wrk "${args[@]}" "http://127.0.0.1:$3/forecast" >"$2" 2>&1 &
    LAST_WRK=$!
  }
  co_both() { # SECONDS TAG → both sides loaded at once, each answer count in $RUN/co-TAG-SIDE.txt
    co_wrk "$1" "$RUN/co-$2-0.txt" "$P_CO" "${CHDR[0]}"
    local first=$LAST_WRK
    co_wrk "$1" "$RUN/co-$2-1.txt" $((P_CO + 2)) "${CHDR[1]}"
    wait "$first" "$LAST_WRK"
  }
  : >"$RUN/co.results"
  AUTH=""
  for r in $(seq 1 "$ROUNDS"); do
    # Fresh databases every round; the builds start in turn first.
    declare -A CPID CHDR
    for k in 0 1; do
      i=$(((k + r - 1) % 2))
      port=$((P_CO + 2 * i))
      dir="$RUN/co-$r-$i"
      mkdir -p "$dir"
      write_proxy_config "$dir/c.yaml" "$port" "${CO_AUTH[$i]}" \
        "devnode:?data=$dir/devnode.db&listen=127.0.0.1:$((port + 1))&wallet=shop" "sqlite:$dir/store.db"
      spawn "co$i" "$SUT_CPU" "${AB[$i]}" proxy --config "$dir/c.yaml"
      CPID[$i]=$LAST_PID
      wait_http "http://127.0.0.1:$port/"
      CHDR[$i]=""
      if [ "${CO_SCEN[$i]}" = verified ]; then
        P_ON=$port P_DEVNODE=$((port + 1)) buy_token
        CHDR[$i]="Authorization: $AUTH"
      fi
    done
    # Auth off against verified: the same request bytes to both (the credential passes through
    # the auth-off proxy to the upstream), so only the verifying differs.
    for i in 0 1; do
      if [ "${CO_SCEN[$i]}" = off ]; then CHDR[$i]=$(same_request); fi
    done
    wait_quiet
    co_both "$WARMUP" warm
    a0=$(cpu_ticks "${CPID[0]}")
    b0=$(cpu_ticks "${CPID[1]}")
    if [ "${CO_PERF:-0}" = 1 ]; then
      for i in 0 1; do
        perf record -F 1999 -p "${CPID[$i]}" -o "$RUN/co-$r-$i.perf" -- sleep "$DURATION" >/dev/null 2>&1 &
      done
    fi
    co_both "$DURATION" "$r"
    a1=$(cpu_ticks "${CPID[0]}")
    b1=$(cpu_ticks "${CPID[1]}")
    [ "${CO_PERF:-0}" = 1 ] && sleep 1 # perf writes its file
    na=$(answers "$RUN/co-$r-0.txt" 0)
    nb=$(answers "$RUN/co-$r-1.txt" 1)
    awk -v a="$((a1 - a0))" -v b="$((b1 - b0))" -v na="${na:-0}" -v nb="${nb:-0}" -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN {
      ua = (na > 0) ? a / hz * 1e6 / na : 0; ub = (nb > 0) ? b / hz * 1e6 / nb : 0
      printf "%.2f %.2f %.2f %.0f %.0f\n", ua, ub, ub - ua, na / d, nb / d }' | tee -a "$RUN/co.results" >&2
    stop "${CPID[0]}"
    stop "${CPID[1]}"
  done
  {
    echo "l402 co-scheduled A/B — $(date -u '+%Y-%m-%d %H:%M UTC'), ROUNDS=$ROUNDS DURATION=${DURATION}s, $half connections each"
    machine
    echo "Both builds on CPU $SUT_CPU at once, each with its own wrk on CPU $LOAD_CPU; CPU µs per"
    echo "counted answer (402 when minting, else 200) of each proxy process, each round:"
    echo "  A = ${AB[0]} ($CO_TARGET)"
    echo "  B = ${AB[1]} ($CO_TARGET_B)"
    awk '{ printf "  round %d: A %8.2f µs  B %8.2f µs  B − A %+7.2f µs (%+.1f %%)   %6.0f / %6.0f answers/s\n", NR, $1, $2, $3, ($1 > 0) ? $3 / $1 * 100 : 0, $4, $5 }' "$RUN/co.results"
    printf '  median: A %s µs, B %s µs, B − A %s µs\n' "$(awk '{ print $1 }' "$RUN/co.results" | median)" \
      "$(awk '{ print $2 }' "$RUN/co.results" | median)" "$(awk '{ print $3 }' "$RUN/co.results" | median)"
  } | tee "$ROOT/bench/results/co.txt"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# --profile: the verified path under callgrind.

if [ "$MODE" = --profile ]; then
  start_upstreams
  # Instrumentation starts off (startup, token purchase and warm-up are not profiled), is
  # switched on for PROFILE_SECONDS of load over 8 connections, then off; the profile is written
  # when the proxy exits. Costs are divided by the number of requests served.
  # PROFILE_TARGET=verified (default) profiles `auth: on` with a valid credential on every
  # request; PROFILE_TARGET=off profiles `auth: off`, for the difference; PROFILE_TARGET=mint
  # sends no credential, so every request mints a challenge (durable SQLite store).
  tgt=${PROFILE_TARGET:-verified}
  AUTH_HEADER=""
  if [ "$tgt" = off ]; then
    write_proxy_config "$RUN/prof.yaml" "$P_ON" off "devnode:" "sqlite:$RUN/off.db"
  else
    write_proxy_config "$RUN/prof.yaml" "$P_ON" on "devnode:?data=$RUN/devnode.db&listen=127.0.0.1:$P_DEVNODE&wallet=shop" \
      "sqlite:$RUN/verified.db"
  fi
  spawn ours-callgrind "$SUT_CPU" valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$RUN/callgrind.out" "$L402" proxy --config "$RUN/prof.yaml"
  PID_CG=$LAST_PID
  for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$P_ON/" && break; sleep 0.1; done
  if [ "$tgt" = verified ]; then
    buy_token
    AUTH_HEADER="Authorization: $AUTH"
  elif [ "$tgt" = off ] && [ "${SAME_REQUEST:-1}" = 1 ]; then
    # The same request as the verified profile's: a credential of the same shape (a 292-char
    # macaroon, a 64-hex preimage), which the auth-off proxy forwards unread.
    AUTH_HEADER="Authorization: L402 $(head -c 219 /dev/urandom | base64 -w0 | tr '+/' '-_'):$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  fi
  wrk_h=()
  [ -n "$AUTH_HEADER" ] && wrk_h=(-H "$AUTH_HEADER")
  pin "$LOAD_CPU" wrk -t1 -c8 -d2s "${wrk_h[@]}" "http://127.0.0.1:$P_ON/forecast" >/dev/null
  callgrind_control -i on "$PID_CG" >/dev/null
  pin "$LOAD_CPU" wrk -t1 -c8 -d"${PROFILE_SECONDS}s" "${wrk_h[@]}" \
    "http://127.0.0.1:$P_ON/forecast" >"$RUN/wrk-profile.txt"
  callgrind_control -i off "$PID_CG" >/dev/null
  served=$(awk '/requests in/ { print $1 }' "$RUN/wrk-profile.txt")
  stop "$PID_CG"
  out="$ROOT/bench/results"
  # The raw profile stays in the build directory (large); the inclusive listing goes to results.
  raw="$TARGET/bench-profiles"
  mkdir -p "$raw"
  cp "$RUN/callgrind.out" "$raw/callgrind-$tgt.out"
  callgrind_annotate --auto=no --inclusive=yes "$raw/callgrind-$tgt.out" >"$out/callgrind-$tgt-inclusive.txt" 2>/dev/null || true
  callgrind_annotate --auto=no "$raw/callgrind-$tgt.out" >"$raw/callgrind-$tgt-self.txt" 2>/dev/null || true
  total=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }' "$raw/callgrind-$tgt-self.txt")
  {
    echo "callgrind profile, $tgt: $served requests (wrk -c8 -d${PROFILE_SECONDS}s), $total instructions"
    echo "  ≈ $(awk -v t="$total" -v n="$served" 'BEGIN { if (n) printf "%.0f", t / n; else print "?" }') instructions per request (whole process: accept, parse, verify, forward, respond)"
    echo "  note: under valgrind sha2 cannot use the CPU's SHA extensions and runs its portable code,"
    echo "  so SHA-256 is over-represented compared with a native run"
    echo "files: bench/results/callgrind-$tgt-inclusive.txt; raw: $raw/callgrind-$tgt.out (callgrind_annotate --tree=caller …)"
  } | tee "$out/callgrind-$tgt-summary.txt"
  exit 0
fi

if [ "$MODE" = --perf ]; then
  # Native sampling profile (perf, cpu-clock, user + kernel) of one proxy under wrk load:
  # PROFILE_TARGET=verified|off|mint as for --profile. Flat: self time by shared object and symbol.
  tgt=${PROFILE_TARGET:-verified}
  start_upstreams
  if [ "$tgt" = off ]; then
    write_proxy_config "$RUN/prof.yaml" "$P_ON" off "devnode:" "sqlite:$RUN/off.db"
  else
    write_proxy_config "$RUN/prof.yaml" "$P_ON" on "devnode:?data=$RUN/devnode.db&listen=127.0.0.1:$P_DEVNODE&wallet=shop" \
      "sqlite:$RUN/verified.db"
  fi
  spawn ours-perf "$SUT_CPU" "$L402" proxy --config "$RUN/prof.yaml"
  PID_P=$LAST_PID
  wait_http "http://127.0.0.1:$P_ON/"
  url="http://127.0.0.1:$P_ON/forecast"
  if [ "$tgt" = nginx ]; then
    # nginx's worker under the same request as the verified proxy gets (the proxy above only
    # sells the token and then idles).
    start_nginx
    PID_P=$(proc_tree "$PID_NGINX" | tail -n 1)
    url="http://127.0.0.1:$P_NGINX/forecast"
  fi
  wrk_h=()
  if [ "$tgt" = verified ] || [ "$tgt" = nginx ]; then
    buy_token
    wrk_h=(-H "Authorization: $AUTH")
  fi
  pin "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s "${wrk_h[@]}" "$url" >/dev/null
  wait_quiet
  perf record -F 4999 ${PERF_CALLGRAPH:+--call-graph "$PERF_CALLGRAPH"} -o "$RUN/perf.data" -p "$PID_P" -- sleep "$PROFILE_SECONDS" >/dev/null 2>&1 &
  PERF_PID=$!
  pin "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${PROFILE_SECONDS}s" "${wrk_h[@]}" "$url" >"$RUN/wrk-perf.txt"
  wait "$PERF_PID" || true
  out="$ROOT/bench/results"
  perf report -i "$RUN/perf.data" --stdio --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$' >"$out/perf-$tgt-dso.txt" || true
  perf report -i "$RUN/perf.data" --stdio --sort dso,sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 300 >"$out/perf-$tgt-sym.txt" || true
  {
    echo "perf, $tgt: $(awk '/^Requests\/sec:/ { print $2 }' "$RUN/wrk-perf.txt") req/s under perf (wrk -c$CONNS -d${PROFILE_SECONDS}s)"
    echo "  proxy warnings during the run (e.g. 503s): $(grep -c WARN "$RUN/ours-perf.err" || true)"
    echo "self time by shared object:"
    head -n 8 "$out/perf-$tgt-dso.txt" | sed 's/^/  /'
    echo "top symbols: bench/results/perf-$tgt-sym.txt"
  } | tee "$out/perf-$tgt-summary.txt"
  exit 0
fi

if [ "$MODE" = --massif ]; then
  # Heap of the verified proxy holding MASSIF_CONNS idle keep-alive connections (each served one
  # verified request): where the per-connection memory goes.
  n=${MASSIF_CONNS:-2000}
  start_upstreams
  write_proxy_config "$RUN/on.yaml" "$P_ON" on "devnode:?data=$RUN/devnode.db&listen=127.0.0.1:$P_DEVNODE&wallet=shop" \
    "sqlite:$RUN/verified.db"
  spawn ours-massif "$SUT_CPU" valgrind --tool=massif --massif-out-file="$RUN/massif.out" \
    "$L402" proxy --config "$RUN/on.yaml"
  PID_MS=$LAST_PID
  for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$P_ON/" && break; sleep 0.1; done
  buy_token
  cmd=("$IDLE_BIN" "127.0.0.1:$P_ON" "$n" /forecast "Authorization: $AUTH")
  [ "$PIN" = 1 ] && cmd=(taskset -c "$LOAD_CPU" "${cmd[@]}")
  mkfifo "$RUN/massif.fifo"
  PARALLEL=50 HOLD=600 "${cmd[@]}" <"$RUN/massif.fifo" >"$RUN/idle-massif.out" 2>&1 &
  IDLE_PID=$!
  PIDS+=("$IDLE_PID")
  exec 7>"$RUN/massif.fifo"
  for _ in $(seq 1 1200); do grep -q '^ready' "$RUN/idle-massif.out" 2>/dev/null && break; sleep 0.5; done
  sleep 5
  rss=$(awk '$1 == "VmRSS:" { print $2 }' /proc/"$PID_MS"/status)
  stop "$PID_MS"
  exec 7>&-
  wait "$IDLE_PID" 2>/dev/null || true
  out="$ROOT/bench/results"
  raw="$TARGET/bench-profiles"
  mkdir -p "$raw"
  cp "$RUN/massif.out" "$raw/massif-idle.out"
  ms_print "$raw/massif-idle.out" >"$raw/massif-idle.txt" 2>/dev/null
  {
    echo "massif, verified proxy with $n idle connections: $(cat "$RUN/idle-massif.out" | head -n1)"
    echo "  RSS under valgrind: $((rss / 1024)) MiB; heap peak and its allocation tree: $raw/massif-idle.txt"
  } | tee "$out/massif-summary.txt"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Criterion: per-call costs, pinned to the SUT core (the mint rows need them).

crit() { # NAME → "median_ns" from criterion's estimates
  local f="$TARGET/criterion/$1/new/estimates.json"
  if [ -f "$f" ]; then
    grep -o '"median":{"confidence_interval":{[^}]*},"point_estimate":[0-9.eE+-]*' "$f" | sed 's/.*"point_estimate"://'
  else
    echo 0
  fi
}
fmt_ns() { awk -v n="$1" 'BEGIN { if (n >= 1e6) printf "%.2f ms", n / 1e6; else if (n >= 1e3) printf "%.2f µs", n / 1e3; else printf "%.0f ns", n }'; }

if [ "$CRITERION" = 1 ]; then
  log "criterion: cargo bench -p l402 --bench verify; -p l402-devnode --bench mint (pinned to CPU $SUT_CPU)"
  pin "$SUT_CPU" cargo bench -p l402 --bench verify >"$RUN/criterion-verify.txt" 2>&1 ||
    log "criterion verify failed: see $RUN/criterion-verify.txt"
  pin "$SUT_CPU" cargo bench -p l402-devnode --bench mint >"$RUN/criterion-mint.txt" 2>&1 ||
    log "criterion mint failed: see $RUN/criterion-mint.txt"
fi

# ---------------------------------------------------------------------------------------------
# Throughput rounds.

start_upstreams
start_nginx
start_ours
buy_token

SCEN=(direct nginx ours-off ours-verified)
declare -A URL=(
  [direct]="http://127.0.0.1:$P_UP_DIRECT/forecast"
  [nginx]="http://127.0.0.1:$P_NGINX/forecast"
  [ours-off]="http://127.0.0.1:$P_OFF/forecast"
  [ours-verified]="http://127.0.0.1:$P_ON/forecast"
)
declare -A SUT=([direct]=$PID_UP_DIRECT [nginx]=$PID_NGINX [ours-off]=$PID_OFF [ours-verified]=$PID_ON)
# Every scenario gets the same request, the verified one's credential included (nginx and auth
# off pass it on to the upstream, as the verified proxy does): only what each server does with it
# differs. SAME_REQUEST=0: only the verified scenario sends it (the reports before 2026-12-03).
SAME=$(same_request)
declare -A HDR=([direct]="$SAME" [nginx]="$SAME" [ours-off]="$SAME" [ours-verified]="Authorization: $AUTH")
declare -A LABEL=([direct]="direct upstream" [nginx]="nginx proxy" [ours-off]="ours, auth off" [ours-verified]="ours, verified L402")

log "warm-up: ${WARMUP}s each"
for s in "${SCEN[@]}"; do
  run_wrk "warmup-$s" "${URL[$s]}" "$WARMUP" "${SUT[$s]}" "${HDR[$s]}" >/dev/null
done
for r in $(seq 1 "$ROUNDS"); do
  # Rotate the order every round so no scenario always runs first or last.
  for i in $(seq 0 $((${#SCEN[@]} - 1))); do
    s=${SCEN[$(((i + r - 1) % ${#SCEN[@]}))]}
    log "round $r/$ROUNDS: $s"
    run_wrk "$s" "${URL[$s]}" "$DURATION" "${SUT[$s]}" "${HDR[$s]}" >/dev/null
  done
done

# ---------------------------------------------------------------------------------------------
# Co-scheduled pairs: the verified proxy and one other server (nginx; our auth-off proxy), both
# on SUT_CPU over the same seconds, each driven by its own wrk (CONNS/2 connections) on
# LOAD_CPU, ROUNDS rounds of DURATION s. The host's speed drifts by 15 % and more within minutes,
# so the alternating rounds above compare moments of different speed; a pair shares the drift,
# and the ratio of the two CPU costs per request is steady to a few per cent.

write_status_lua
co_pair() { # A B → "A_µs B_µs" (CPU µs per 200 of each) appended to $RUN/pair-A-B.results
  local a=$1 b=$2 half=$((CONNS / 2)) s
  [ "$half" -ge 1 ] || half=1
  declare -A t0 t1 wpid n
  wait_quiet
  for s in "$a" "$b"; do t0[$s]=$(cpu_ticks "${SUT[$s]}"); done
  for s in "$a" "$b"; do
    local args=(-t1 -c"$half" -d"${DURATION}s" -s "$RUN/status.lua")
    [ -n "${HDR[$s]}" ] && args+=(-H "${HDR[$s]}")
    pin "$LOAD_CPU" wrk "${args[@]}" "${URL[$s]}" >"$RUN/pair-$s.txt" 2>&1 &
    wpid[$s]=$!
  done
  for s in "$a" "$b"; do wait "${wpid[$s]}" || true; done
  for s in "$a" "$b"; do
    t1[$s]=$(cpu_ticks "${SUT[$s]}")
    n[$s]=$(awk '$1 == "status" && $2 == 200 { print $3 }' "$RUN/pair-$s.txt")
  done
  awk -v ca="$((t1[$a] - t0[$a]))" -v na="${n[$a]:-0}" -v cb="$((t1[$b] - t0[$b]))" -v nb="${n[$b]:-0}" -v hz="$CLK_TCK" 'BEGIN {
    printf "%.3f %.3f\n", (na > 0) ? ca / hz * 1e6 / na : 0, (nb > 0) ? cb / hz * 1e6 / nb : 0 }' |
    tee -a "$RUN/pair-$a-$b.results" >&2
}
PAIRS=("ours-verified nginx" "ours-verified ours-off")
for r in $(seq 1 "$ROUNDS"); do
  for p in "${PAIRS[@]}"; do
    log "co-scheduled round $r/$ROUNDS: $p"
    # shellcheck disable=SC2086 # two scenario names
    co_pair $p
  done
done

# ---------------------------------------------------------------------------------------------
# Challenge minting: wrk without a credential against the verified proxy (no mint limit), each
# request mints a challenge: invoice from the in-process dev node, root key durably in SQLite
# (WAL, synchronous=FULL, group commit), macaroon.

# Every answer's status is counted (the Lua hook written above): only 402s with a challenge
# count as minted; a 503 (backend or store unavailable) is fast and must not pass for minting.
# Each round is followed by the baseline on the same core: BOLT11 build+sign with
# lightning-invoice, and the ECDSA signature alone (the example `sign_rate`, MINT_DURATION s),
# so the ratio compares rates measured minutes apart, not a criterion number from another hour.
log "challenge minting: ${MINT_DURATION}s x $ROUNDS, each round followed by the signing rate on CPU $SUT_CPU"
for r in $(seq 1 "$ROUNDS"); do
  WRK_LUA="$RUN/status.lua" run_wrk mint "http://127.0.0.1:$P_ON/forecast" "$MINT_DURATION" "$PID_ON" >/dev/null
  pin "$SUT_CPU" "$SIGN_BIN" "$MINT_DURATION" >>"$RUN/sign.results" ||
    log "sign_rate failed: the minting ratios will read n/a"
done
# How long a synchronous 4 KiB write takes on this disk right now (durable minting waits for it).
fsync_ms=$(dd if=/dev/zero of="$RUN/fsync.probe" bs=4k count=200 oflag=dsync 2>&1 | awk '/copied/ { printf "%.2f", $(NF-3) / 200 * 1000 }')
rm -f "$RUN/fsync.probe"
minted_db=$(ls -l "$RUN/verified.db" "$RUN/verified.db-wal" 2>/dev/null | awk '{ s += $5 } END { printf "%.1f MiB", s / 1048576 }')

# ---------------------------------------------------------------------------------------------
# Memory at IDLE_CONNS idle keep-alive connections: a fresh verified proxy (same store, so the
# token verifies), each connection having served one verified request; and nginx for reference.

stop "$PID_OFF"
stop "$PID_ON"
write_proxy_config "$RUN/idle.yaml" "$P_IDLE" on "devnode:" "sqlite:$RUN/verified.db"
spawn ours-idle "$SUT_CPU" "$L402" proxy --config "$RUN/idle.yaml"
PID_IDLE=$LAST_PID
wait_http "http://127.0.0.1:$P_IDLE/"
curl -s -o /dev/null -H "Authorization: $AUTH" "http://127.0.0.1:$P_IDLE/forecast"
sleep 1
rss_before=$(rss_kib "$PID_IDLE" VmRSS)

log "idle connections: $IDLE_CONNS to our verified proxy"
hold_idle "$P_IDLE" "Authorization: $AUTH"
ours_ready=$(grep '^ready' "$RUN/idle-$P_IDLE.out" || echo "ready ?")
ours_est=$(established "$P_IDLE")
ours_rss=$(rss_kib "$PID_IDLE" VmRSS)
ours_hwm=$(rss_kib "$PID_IDLE" VmHWM)
release_idle

log "idle connections: $IDLE_CONNS to nginx (reference)"
nginx_before=$(rss_kib "$PID_NGINX" VmRSS)
hold_idle "$P_NGINX" ""
nginx_ready=$(grep '^ready' "$RUN/idle-$P_NGINX.out" || echo "ready ?")
nginx_est=$(established "$P_NGINX")
nginx_rss=$(rss_kib "$PID_NGINX" VmRSS)
release_idle

# ---------------------------------------------------------------------------------------------
# Report.

REPORT="$ROOT/bench/results/latest.txt"
{
  echo "l402 load benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
  machine
  echo "command:  bench/run.sh   (DURATION=$DURATION ROUNDS=$ROUNDS CONNS=$CONNS WARMUP=$WARMUP IDLE_CONNS=$IDLE_CONNS PIN=$PIN)"
  if [ -n "$SAME" ]; then
    echo "requests: the same to every server: GET /forecast with the verified credential ($(printf '%s' "$AUTH" | wc -c)-byte Authorization value)"
  else
    echo "requests: GET /forecast; only the verified proxy's carry the credential (SAME_REQUEST=0)"
  fi
  if [ "$PIN" = 1 ]; then
    echo "pinning:  server under test alone on CPU $SUT_CPU (nginx 1 worker; ours sees one CPU: Tokio's single-threaded scheduler); wrk -t1 and the upstream behind the proxies on CPU $LOAD_CPU"
  else
    echo "pinning:  none"
  fi
  echo "load:     wrk -t1 -c$CONNS -d${DURATION}s --latency, GET /forecast → 200 with 1 KiB body; $ROUNDS alternating rounds, medians"
  echo "columns:  SUT CPU = CPU time of the server under test ÷ wall time (100% = one core busy);"
  echo "          SUT core / load core = how busy CPU $SUT_CPU / CPU $LOAD_CPU were (all processes, user+system+irq);"
  echo "          SUT core well above SUT CPU means something else ran there; load core near 100% means wrk + upstream may be the limit"
  echo "          CPU µs/req = the server's own CPU time ÷ requests: what one request costs it, whether or not the load side was the limit"
  echo
  printf '%-22s %12s %10s %10s %8s %9s %9s %11s  %s\n' scenario "req/s (med)" "p50 µs" "p99 µs" "SUT CPU" "SUT core" "load core" "CPU µs/req" "per round req/s"
  for s in "${SCEN[@]}"; do
    f="$RUN/$s.results"
    bad=$(awk '$5 > 0 || $6 > 0 { n++ } END { print n + 0 }' "$f")
    noisy=$(awk '$8 - $4 > 15 { n++ } END { print n + 0 }' "$f")
    note=""
    [ "$noisy" -gt 0 ] && [ "$noisy" -lt "$(wc -l <"$f")" ] && note=", left out of the medians"
    printf '%-22s %12.0f %10.0f %10.0f %7.0f%% %8.0f%% %8.0f%% %11.2f  %s%s\n' "${LABEL[$s]}" "$(col_median "$f" 1)" \
      "$(col_median "$f" 2)" "$(col_median "$f" 3)" "$(col_median "$f" 4)" "$(col_median "$f" 8)" "$(col_median "$f" 7)" "$(us_median "$f")" \
      "$(awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $1 }' "$f")" \
      "$([ "$bad" -gt 0 ] && echo "  (!! $bad rounds with errors or non-2xx)")$([ "$noisy" -gt 0 ] && echo "  (!! $noisy rounds disturbed by other work on the SUT core$note)")"
  done
  d=$(col_median "$RUN/direct.results" 1)
  n=$(col_median "$RUN/nginx.results" 1)
  o=$(col_median "$RUN/ours-off.results" 1)
  v=$(col_median "$RUN/ours-verified.results" 1)
  echo
  printf '%-34s %7s   %s\n' ratio value target
  printf '%-34s %7s   %s\n' "ours-verified ÷ nginx" "$(ratio "$v" "$n")" "≥ 1.00"
  printf '%-34s %7s   %s\n' "ours-verified ÷ ours-auth-off" "$(ratio "$v" "$o")" "≥ 0.95"
  printf '%-34s %7s\n' "ours-auth-off ÷ nginx" "$(ratio "$o" "$n")"
  printf '%-34s %7s\n' "nginx ÷ direct upstream" "$(ratio "$n" "$d")"
  printf '%-34s %7s\n' "ours-auth-off ÷ direct upstream" "$(ratio "$o" "$d")"
  printf '%-34s %7s\n' "ours-verified ÷ direct upstream" "$(ratio "$v" "$d")"
  # Per-core capacity: requests one core can serve = 1 ÷ CPU per request. When the load side
  # (wrk + upstream on one core) saturates first, every proxy shows about the load side's rate
  # and the req/s ratios drift towards 1; these do not.
  nu=$(us_median "$RUN/nginx.results")
  ou=$(us_median "$RUN/ours-off.results")
  vu=$(us_median "$RUN/ours-verified.results")
  echo "per-core capacity (1 ÷ CPU µs per request)"
  printf '%-34s %7s   %s\n' "ours-verified ÷ nginx" "$(ratio "$nu" "$vu")" "≥ 1.00"
  printf '%-34s %7s   %s\n' "ours-verified ÷ ours-auth-off" "$(ratio "$ou" "$vu")" "≥ 0.95"
  printf '%-34s %7s\n' "ours-auth-off ÷ nginx" "$(ratio "$nu" "$ou")"
  saturated=$(cat "$RUN/nginx.results" "$RUN/ours-off.results" "$RUN/ours-verified.results" | awk '$7 >= 85 { n++ } END { print n + 0 }')
  [ "$saturated" -gt 0 ] && echo "  ($saturated proxy rounds had the load core ≥ 85 % busy: their req/s may be the load side's limit, not the server's)"
  echo "co-scheduled pairs (both servers on CPU $SUT_CPU over the same seconds, each with its own wrk -c$((CONNS / 2)); capacity ratio = the other's CPU µs ÷ verified's, per round, then the median)"
  for p in "${PAIRS[@]}"; do
    read -r pa pb <<<"$p"
    f="$RUN/pair-$pa-$pb.results"
    target=""
    [ "$pb" = nginx ] && target="≥ 1.00"
    [ "$pb" = ours-off ] && target="≥ 0.95"
    printf '%-34s %7s   %-7s (CPU µs per request: %s %s, %s %s; rounds: %s)\n' "ours-verified ÷ ${pb/ours-off/ours-auth-off}" \
      "$(awk '$1 > 0 { print $2 / $1 }' "$f" | median | awk '{ printf "%.3f", $1 }')" "$target" \
      "${LABEL[$pa]}" "$(awk '{ print $1 }' "$f" | median)" "${LABEL[$pb]}" "$(awk '{ print $2 }' "$f" | median)" \
      "$(awk '$1 > 0 { printf "%s%.3f", (NR > 1 ? " " : ""), $2 / $1 }' "$f")"
  done
  echo
  # Challenges per second = req/s × the share of answers that were 402s.
  awk '{ r = ($10 > 0) ? $1 * $9 / $10 : 0; $1 = sprintf("%.2f", r); print }' "$RUN/mint.results" >"$RUN/mint402.results"
  m=$(col_median "$RUN/mint402.results" 1)
  other=$(awk '{ n += $10 - $9 } END { print n + 0 }' "$RUN/mint.results")
  # sign.results: "build_sign RATE US ecdsa RATE US" per round.
  sign=$(awk '{ print $2 }' "$RUN/sign.results" | median)
  sign_us=$(awk '{ print $3 }' "$RUN/sign.results" | median)
  ecdsa=$(awk '{ print $5 }' "$RUN/sign.results" | median)
  ecdsa_us=$(awk '{ print $6 }' "$RUN/sign.results" | median)
  mint_us=$(us_median "$RUN/mint.results")
  echo "challenge minting (durable root keys: SQLite WAL, synchronous=FULL; invoices: in-process dev node)"
  printf '  %-46s %10.0f /s   p50 %s µs, p99 %s µs, SUT CPU %s%%, SUT core %s%%, CPU %s µs each (per round: %s)\n' "through the proxy (wrk, no credential, 402s)" "$m" \
    "$(col_median "$RUN/mint402.results" 2)" "$(col_median "$RUN/mint402.results" 3)" "$(col_median "$RUN/mint402.results" 4)" "$(col_median "$RUN/mint402.results" 8)" \
    "$mint_us" "$(awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $1 }' "$RUN/mint402.results")"
  [ "$other" -gt 0 ] && echo "  !! $other answers were not 402 (see $RUN/ours-verified.err); they are not counted"
  noisy=$(awk '$8 - $4 > 15 { n++ } END { print n + 0 }' "$RUN/mint402.results")
  [ "$noisy" -gt 0 ] && echo "  !! $noisy of $(wc -l <"$RUN/mint402.results") mint rounds disturbed by other work on the SUT core$([ "$noisy" -lt "$(wc -l <"$RUN/mint402.results")" ] && echo ", left out of the medians"); each round's own per-core ratio is given below"
  printf '  %-46s %10.0f /s   (%s µs each; lightning-invoice builder, same core, after each mint round: %s)\n' "raw BOLT11 build+sign" "$sign" "$sign_us" \
    "$(awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $2 }' "$RUN/sign.results")"
  printf '  %-46s %10.0f /s   (%s µs each; the floor of any invoice)\n' "ECDSA recoverable signature alone" "$ecdsa" "$ecdsa_us"
  printf '  %-46s %10s     target ≥ 0.50\n' "minted ÷ raw BOLT11 build+sign" "$(ratio "$m" "$sign")"
  printf '  %-46s %10s     (per core: build+sign µs ÷ mint CPU µs = %s; each round with the signing round after it: %s)\n' "minted ÷ ECDSA alone" "$(ratio "$m" "$ecdsa")" "$(ratio "$sign_us" "$mint_us")" \
    "$(paste -d' ' "$RUN/mint402.results" "$RUN/sign.results" | awk '$11 > 0 { printf "%s%.3f", (NR > 1 ? " " : ""), $14 / $11 }')"
  echo "  store after the run: $minted_db; a synchronous 4 KiB write (dd oflag=dsync) took ${fsync_ms} ms on this disk"
  echo
  echo "memory at $IDLE_CONNS idle keep-alive connections (each served one request first)"
  printf '  %-24s RSS %6.1f MiB before, %6.1f MiB with them (peak %6.1f MiB); %s; %s established   target ≤ 64 MiB\n' \
    "ours, verified" "$(awk -v k="$rss_before" 'BEGIN { print k / 1024 }')" "$(awk -v k="$ours_rss" 'BEGIN { print k / 1024 }')" \
    "$(awk -v k="$ours_hwm" 'BEGIN { print k / 1024 }')" "$ours_ready" "$ours_est"
  printf '  %-24s RSS %6.1f MiB before, %6.1f MiB with them; %s; %s established (master + worker)\n' \
    "nginx (reference)" "$(awk -v k="$nginx_before" 'BEGIN { print k / 1024 }')" "$(awk -v k="$nginx_rss" 'BEGIN { print k / 1024 }')" \
    "$nginx_ready" "$nginx_est"
  if [ "$CRITERION" = 1 ]; then
    echo
    echo "criterion (median per call, pinned to CPU $SUT_CPU)"
    for b in parse_authorization_4_caveats decode_macaroon_base64_4_caveats verify_4_caveats \
      floor_6_hmac_1_sha256 parse_and_verify_4_caveats mint_3_caveats bolt11_sign bolt11_sign_encode ecdsa_sign_recoverable \
      devnode_create_invoice challenge_sqlite_file_seq challenge_sqlite_memory_seq; do
      printf '  %-36s %s\n' "$b" "$(fmt_ns "$(crit "$b")")"
    done
    for b in challenge_sqlite_file_par64 challenge_sqlite_memory_par64; do
      per=$(awk -v n="$(crit "$b/batch")" 'BEGIN { print n / 64 }')
      printf '  %-36s %s per challenge (%0.f /s)\n' "$b" "$(fmt_ns "$per")" "$(awk -v n="$per" 'BEGIN { if (n > 0) print 1e9 / n; else print 0 }')"
    done
    printf '  %-36s %s\n' "verify ÷ floor" "$(ratio "$(crit verify_4_caveats)" "$(crit floor_6_hmac_1_sha256)")"
  fi
} | tee "$REPORT"
log "written to bench/results/latest.txt"
