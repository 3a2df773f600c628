#!/usr/bin/env bash
# Runs every fuzz target for a while (default 60 s each), seeding corpora from the test vectors.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). Works on stable Rust through
# RUSTC_BOOTSTRAP=1 (cargo-fuzz needs nightly-only sanitizer flags). Crashes land in
# fuzz/artifacts/<target>/ and make this script exit non-zero.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(macaroon_binary macaroon_json macaroon_text identifier challenge credential verify upstream_response front_request client_ip)
command -v cargo-fuzz >/dev/null || { echo "fuzz.sh: install cargo-fuzz first: cargo install cargo-fuzz --locked" >&2; exit 1; }
export RUSTC_BOOTSTRAP=1

cd "$repo/fuzz"
# Seeds: every base64/hex/JSON string of the vector files, decoded where it is binary.
python3 - "$repo" <<'PY'
import base64, binascii, json, os, pathlib, sys
repo = pathlib.Path(sys.argv[1])
strings = []
def walk(v):
    if isinstance(v, dict): [walk(x) for x in v.values()]
    elif isinstance(v, list): [walk(x) for x in v]
    elif isinstance(v, str): strings.append(v)
for f in repo.glob("crates/*/tests/vectors/*.json"):
    walk(json.loads(f.read_text()))
def write(target, name, data):
    d = repo / "fuzz/corpus" / target; d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)
for i, s in enumerate(strings):
    b = s.encode()
    for t in ("macaroon_text", "challenge", "credential", "macaroon_json"):
        write(t, f"v{i}", b)
    for dec in (lambda x: binascii.unhexlify(x), lambda x: base64.urlsafe_b64decode(x.replace("+", "-").replace("/", "_") + "=" * (-len(x) % 4))):
        try:
            raw = dec(s)
        except Exception:
            continue
        write("macaroon_binary", f"v{i}", raw)
        if len(raw) == 66: write("identifier", f"v{i}", raw)
        if raw[:1] == b"\x02":
            write("challenge", f"c{i}", f'L402 macaroon="{base64.b64encode(raw).decode()}", invoice="lnbcrt1x"'.encode())
            write("credential", f"a{i}", f"Authorization: L402 {base64.b64encode(raw).decode()}:{'ab' * 32}".encode())
# verify: an options byte, then one caveat per line.
write("verify", "s1", b"\x06services=api:0\nregion=eu\napi_valid_until=2000\napi_capabilities=read,write\nnote=1")
write("verify", "s2", b"\x86services=api:0,other:1\nservices=api:0\nregion=eu\nregion=eu\napi_capabilities=read\napi_capabilities=read")
# upstream_response: a flags byte (bit 0: HEAD request; the rest: piece size), then an answer.
write("upstream_response", "s1", b"\x0eHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
write("upstream_response", "s2", b"\x02HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\ngrpc-status: 0\r\n\r\n")
write("upstream_response", "s3", b"\x05HTTP/1.0 304 Not Modified\r\ncontent-length: 7\r\nconnection: close\r\n\r\n")
# front_request: what a client sends the proxy's own HTTP/1.1 lane.
write("front_request", "s1", b"GET /forecast?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: L402 m:p\r\n\r\n")
write("front_request", "s2", b"HEAD http://a/x HTTP/1.1\r\nConnection: keep-alive, close\r\nX: 1\r\nx: 2\r\n\r\n")
write("front_request", "s3", b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n")
# client_ip: PROXY v2 headers (IPv4, IPv6, LOCAL), and a flags byte then forwarding values.
sig = bytes([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A])
write("client_ip", "p4", sig + b"\x21\x11\x00\x0c" + bytes([198, 51, 100, 7, 10, 0, 0, 1]) + b"\x9c\x40\x01\xbb")
write("client_ip", "p6", sig + b"\x21\x21\x00\x24" + bytes(range(16)) + bytes(16) + b"\x04\xd2\x01\xbb")
write("client_ip", "pl", sig + b"\x20\x00\x00\x00")
write("client_ip", "x1", b"\x00198.51.100.7, 10.0.0.2\n10.0.0.3")
write("client_ip", "x2", b'\x01for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"\nfor=10.1.2.3')
write("client_ip", "x3", b"\x04unknown, [2001:db8::5], ::ffff:10.9.9.9")
PY
cargo fuzz build -O "${targets[@]/#/}" >/dev/null 2>&1 || cargo fuzz build -O
for t in "${targets[@]}"; do
  echo "fuzz.sh: $t for ${secs}s" >&2
  cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=4096 -print_final_stats=1 2>&1 \
    | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==.*ERROR|SUMMARY|Done)" || true
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "fuzz.sh: CRASH in $t: $(ls artifacts/$t/crash-*)" >&2; exit 1
  fi
done
