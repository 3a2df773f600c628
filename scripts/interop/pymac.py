#!/usr/bin/env python3
"""pymacaroons 0.13.0 peer for the interop tests: ONE JSON request on stdin, ONE JSON line on stdout.

Run with the venv made by setup.sh (cwd does not matter):
    DIR/venv/bin/python scripts/interop/pymac.py  < request.json

Requests / responses (hex is lowercase; "S" = string):
  {"op":"mint","root_key_hex":H,"identifier_hex":H,"location":S,"caveats":[S,...]}
    -> {"v2_b64url":S, "v2_b64std_padded":S, "v2_json":S, "v1_b64":S|null, "signature_hex":H}
       v2_b64url is pymacaroons' own serialize() (URL-safe, unpadded); v1_b64 (libmacaroons V1
       packets, URL-safe unpadded) is null when the identifier is not valid UTF-8.
  {"op":"verify","root_key_hex":H,"macaroon":S,"allow":[S,...]}
    -> {"ok":bool, "error":S|null, "identifier_hex":H|null, "caveats":[S]|null,
        "signature_hex":H|null, "location":S|null}
       S is base64 (any alphabet, padded or not; V1 or V2 binary) or, if it starts with "{"
       (leading whitespace ignored), V1/V2 JSON; S is otherwise passed on unchanged. A caveat
       is satisfied iff its exact text is in "allow". Decoded fields are filled whenever
       deserialization worked (caveats decoded as UTF-8, invalid bytes replaced).
Note pymacaroons is lenient: it ignores surrounding whitespace and bytes after the first
macaroon's signature; npm macaroon refuses both.
Exit status: 0 whenever a response was written (also for ok=false); non-zero = harness bug
(bad request JSON, unknown op, bad hex in the request).
"""
import base64
import json
import sys

from pymacaroons import MACAROON_V1, MACAROON_V2, Macaroon, Verifier
from pymacaroons.serializers import BinarySerializer, JsonSerializer


def build(req, version):
    m = Macaroon(location=req.get("location", ""), identifier=bytes.fromhex(req["identifier_hex"]),
                 key=bytes.fromhex(req["root_key_hex"]), version=version)
    for c in req.get("caveats", []):
        m.add_first_party_caveat(c)
    return m


def mint(req):
    m = build(req, MACAROON_V2)
    raw = BinarySerializer().serialize_raw(m)
    try:
        bytes.fromhex(req["identifier_hex"]).decode("utf-8")
        v1 = build(req, MACAROON_V1).serialize()
    except UnicodeDecodeError:
        v1 = None  # V1 stores the identifier as text
    return {
        "v2_b64url": m.serialize(),
        "v2_b64std_padded": base64.b64encode(raw).decode("ascii"),
        "v2_json": m.serialize(serializer=JsonSerializer()),
        "v1_b64": v1,
        "signature_hex": m.signature,  # pymacaroons keeps the signature as hex text
    }


def verify(req):
    key = bytes.fromhex(req["root_key_hex"])
    allow = set(req.get("allow", []))
    text = req["macaroon"]  # passed on unchanged: the library's own tolerance is what we test
    out = {"ok": False, "error": None, "identifier_hex": None, "caveats": None,
           "signature_hex": None, "location": None}
    try:
        serializer = JsonSerializer() if text.lstrip().startswith("{") else None
        m = Macaroon.deserialize(text, serializer=serializer)
        out.update(identifier_hex=m.identifier_bytes.hex(),
                   caveats=[c.caveat_id_bytes.decode("utf-8", "replace") for c in m.caveats],
                   signature_hex=m.signature_bytes.decode("ascii"),
                   location=m.location)
    except Exception as e:  # not a macaroon pymacaroons can read
        out["error"] = "deserialize: %s: %s" % (type(e).__name__, e)
        return out
    v = Verifier()
    v.satisfy_general(lambda predicate: predicate in allow)
    try:
        out["ok"] = v.verify(m, key) is True
    except Exception as e:  # bad key, unsatisfied caveat, non-UTF-8 caveat, ...
        out["error"] = "%s: %s" % (type(e).__name__, e)
    return out


def main():
    req = json.load(sys.stdin)
    ops = {"mint": mint, "verify": verify}
    if req.get("op") not in ops:
        sys.exit("pymac.py: unknown op %r" % req.get("op"))
    json.dump(ops[req["op"]](req), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
