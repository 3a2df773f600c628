#!/usr/bin/env node
// npm `macaroon` 3.0.4 (patched by setup.sh) peer for the interop tests:
// ONE JSON request on stdin, ONE JSON line on stdout.
//
// Run (cwd does not matter):  L402_INTEROP_DIR=DIR node scripts/interop/npm_mac.js < request.json
// Packages are loaded from $L402_INTEROP_DIR/node/node_modules (DIR = what setup.sh installed into;
// default <repo>/target/interop). NODE_PATH is not needed.
//
// Same protocol as pymac.py (hex is lowercase):
//   {"op":"mint","root_key_hex":H,"identifier_hex":H,"location":S,"caveats":[S,...]}
//     -> {"v2_b64url":S (unpadded), "v2_b64std_padded":S, "v2_json":S (JSON.stringify(exportJSON())),
//         "v1_b64":null (npm macaroon cannot write V1 binary), "signature_hex":H}
//   {"op":"verify","root_key_hex":H,"macaroon":S,"allow":[S,...]}
//     -> {"ok":bool,"error":S|null,"identifier_hex":H|null,"caveats":[S]|null,"signature_hex":H|null,
//         "location":S|null}
//     S starting with "{" (leading whitespace ignored) is JSON.parse'd and imported as V1/V2 JSON,
//     anything else goes to importMacaroon(S) unchanged (V2 binary base64). A caveat is satisfied
//     iff its exact text is in "allow". Decoded fields are filled whenever the import worked.
// Exit status 0 whenever a response was written; non-zero = harness bug (bad request, unknown op).
'use strict';
const path = require('path');
const { createRequire } = require('module');
const dir = process.env.L402_INTEROP_DIR || path.join(__dirname, '..', '..', 'target', 'interop');
const macaroon = createRequire(path.join(path.resolve(dir), 'node', 'package.json'))('macaroon');

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const fromHex = (h) => {
  if (typeof h !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(h)) throw new Error(`bad hex in request: ${h}`);
  return Buffer.from(h, 'hex');
};

function mint(req) {
  const m = macaroon.newMacaroon({
    identifier: fromHex(req.identifier_hex), location: req.location || '',
    rootKey: fromHex(req.root_key_hex), version: 2,
  });
  for (const c of req.caveats || []) m.addFirstPartyCaveat(Buffer.from(c, 'utf8'));
  const bin = Buffer.from(m.exportBinary()); // throws at >= 4 caveats without setup.sh's patch
  return {
    v2_b64url: bin.toString('base64url'), // unpadded
    v2_b64std_padded: bin.toString('base64'),
    v2_json: JSON.stringify(m.exportJSON()),
    v1_b64: null,
    signature_hex: hex(m.signature),
  };
}

function verify(req) {
  const key = fromHex(req.root_key_hex);
  const allow = new Set(req.allow || []);
  const out = { ok: false, error: null, identifier_hex: null, caveats: null, signature_hex: null, location: null };
  let m;
  try {
    const s = req.macaroon;
    m = macaroon.importMacaroon(s.trimStart().startsWith('{') ? JSON.parse(s) : s);
    out.identifier_hex = hex(m.identifier);
    out.caveats = m.caveats.map((c) => Buffer.from(c.identifier).toString('utf8'));
    out.signature_hex = hex(m.signature);
    out.location = m.location ?? null; // null: no location field
  } catch (e) {
    out.error = `import: ${e.message}`;
    return out;
  }
  try {
    // check() returns null when the condition is satisfied, an error string otherwise
    m.verify(key, (cond) => (allow.has(cond) ? null : 'caveat not allowed'));
    out.ok = true;
  } catch (e) {
    out.error = e.message;
  }
  return out;
}

const req = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const ops = { mint, verify };
if (!ops[req.op]) {
  console.error(`npm_mac.js: unknown op ${JSON.stringify(req.op)}`);
  process.exit(2);
}
process.stdout.write(JSON.stringify(ops[req.op](req)) + '\n');
