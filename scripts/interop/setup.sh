#!/usr/bin/env bash
# Installs the third-party macaroon / L402 implementations the interop tests run against.
#
#   scripts/interop/setup.sh [DIR]        DIR defaults to <repo>/target/interop
#
# Result (idempotent; a second run with a matching stamp returns at once):
#   DIR/venv/            Python venv with pymacaroons  -> run:  DIR/venv/bin/python scripts/interop/pymac.py
#   DIR/node/node_modules  lsat-js, macaroon (patched), bolt11
#                        -> run:  L402_INTEROP_DIR=DIR node scripts/interop/{npm_mac,lsat}.js
#                           (the .js scripts resolve their packages from $L402_INTEROP_DIR/node)
#   DIR/.ready           stamp with the installed versions, written last
#
# Only the package registries (PyPI, npm) are needed. Concurrent runs are serialised with flock.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
DIR=${1:-$repo/target/interop}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

PYMAC=0.13.0 LSATJS=2.0.6 NPMMAC=3.0.4 BOLT11=1.4.1
# Old/new text of the one-line fix for macaroon@3.0.4: ByteBuffer._grow compared against the
# never-set this._capacity, so the buffer doubled on every append and exportBinary() threw
# "Invalid typed array length" for macaroons with >= 4 caveats.
PATCH_OLD='if (minCap <= this._capacity) {'
PATCH_NEW='if (minCap <= this._buf.length) {'

log() { echo "interop-setup: $*" >&2; }
die() { echo "interop-setup: ERROR: $*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 not found"
command -v node >/dev/null || die "node not found"
command -v npm >/dev/null || die "npm not found"

# The stamp also records the interpreters: a venv / node_modules built for another one is rebuilt.
stamp="pymacaroons=$PYMAC lsat-js=$LSATJS macaroon=$NPMMAC+capacity-patch bolt11=$BOLT11 $(python3 --version 2>&1) node=$(node --version)"
ready() { [ -f "$DIR/.ready" ] && [ "$(cat "$DIR/.ready")" = "$stamp" ]; }

ready && exit 0

exec 9>"$DIR/.lock"
flock 9                      # another setup.sh may be installing into the same DIR
ready && { log "ready (installed by a concurrent run)"; exit 0; }
rm -f "$DIR/.ready"
start=$(date +%s)

# --- Python: pymacaroons ---------------------------------------------------------------------------
log "python venv + pymacaroons==$PYMAC in $DIR/venv"
python3 -m venv "$DIR/venv"
"$DIR/venv/bin/pip" install -q --disable-pip-version-check "pymacaroons==$PYMAC"
"$DIR/venv/bin/python" -c 'import pymacaroons' || die "pymacaroons does not import"

# --- Node: lsat-js, macaroon, bolt11 ---------------------------------------------------------------
# lsat-js depends on macaroon via a GitHub URL (unreachable); "$macaroon" makes every macaroon
# dependency use our direct dependency from the registry instead.
log "npm install lsat-js@$LSATJS macaroon@$NPMMAC bolt11@$BOLT11 in $DIR/node"
mkdir -p "$DIR/node"
cat >"$DIR/node/package.json" <<EOF
{
  "name": "l402-interop",
  "version": "1.0.0",
  "private": true,
  "dependencies": { "bolt11": "$BOLT11", "lsat-js": "$LSATJS", "macaroon": "$NPMMAC" },
  "overrides": { "macaroon": "\$macaroon" }
}
EOF
(cd "$DIR/node" && npm install --no-audit --no-fund --loglevel=error >&2)

macjs="$DIR/node/node_modules/macaroon/macaroon.js"
[ -f "$macjs" ] || die "$macjs missing after npm install"
log "patching $macjs (ByteBuffer capacity bug)"
sed -i "s/${PATCH_OLD}/${PATCH_NEW}/" "$macjs"
grep -qF "$PATCH_NEW" "$macjs" || die "macaroon.js patch did not apply (text not found: $PATCH_NEW)"
! grep -qF "$PATCH_OLD" "$macjs" || die "macaroon.js still contains: $PATCH_OLD"
# lsat-js must see that same (patched) copy, not a nested one
[ -z "$(find "$DIR/node/node_modules" -path '*/node_modules/*/node_modules/macaroon/package.json')" ] \
  || die "a nested copy of macaroon exists; the override did not take"

echo "$stamp" >"$DIR/.ready"
log "ready in $(( $(date +%s) - start )) s: $stamp"
