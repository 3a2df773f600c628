#!/usr/bin/env node
// lsat-js 2.0.6 peer for the interop tests: ONE JSON request on stdin, ONE JSON line on stdout.
//
// Run (cwd does not matter):  L402_INTEROP_DIR=DIR node scripts/interop/lsat.js < request.json
// Packages are loaded from $L402_INTEROP_DIR/node/node_modules (DIR = what setup.sh installed into;
// default <repo>/target/interop). NODE_PATH is not needed.
//
// Requests / responses (hex lowercase; every response has "ok" and "error"; on ok=false the other
// fields are null):
//   {"op":"parse_challenge","header":S}   S = WWW-Authenticate value, e.g. L402 macaroon="..", invoice=".."
//     -> {"ok","error","payment_hash":H (from the INVOICE), "invoice_amount":int (sat),
//         "identifier":{"version":int,"payment_hash":H,"token_id":H}, "base_macaroon":S,
//         "caveats":[S]}   caveats = getCaveatsFromMacaroon(..).map(c => c.encode())
//        lsat-js refuses (ok=false) a macaroon with a caveat not of the form cond[<,=,>]value, and
//        does NOT check that the identifier's payment hash equals the invoice's.
//   {"op":"decode_identifier","macaroon":S}
//     -> {"ok","error","version":int,"payment_hash":H,"token_id":H}
//   {"op":"check_preimage","header":S,"preimage_hex":H}
//     -> {"ok":bool,"error"}   ok = setPreimage() did not throw and isSatisfied()
//        (setPreimage wants exactly 64 LOWERCASE hex chars; uppercase is refused)
//   {"op":"to_token","header":S,"preimage_hex":H}
//     -> {"ok","error","token":S}   token = toToken() = "LSAT <macaroon>:<preimage>"
// Exit status 0 whenever a response was written; non-zero = harness bug (bad request, unknown op).
'use strict';
const path = require('path');
const { createRequire } = require('module');
const dir = process.env.L402_INTEROP_DIR || path.join(__dirname, '..', '..', 'target', 'interop');
const { Lsat, Identifier, decodeIdentifierFromMacaroon, getCaveatsFromMacaroon } =
  createRequire(path.join(path.resolve(dir), 'node', 'package.json'))('lsat-js');

function identifier(mac) {
  const id = Identifier.fromString(decodeIdentifierFromMacaroon(mac));
  return { version: id.version, payment_hash: id.paymentHash.toString('hex'), token_id: id.tokenId.toString('hex') };
}

const ops = {
  parse_challenge(req) {
    const lsat = Lsat.fromHeader(req.header);
    return {
      payment_hash: lsat.paymentHash, invoice_amount: lsat.invoiceAmount,
      identifier: identifier(lsat.baseMacaroon), base_macaroon: lsat.baseMacaroon,
      caveats: getCaveatsFromMacaroon(lsat.baseMacaroon).map((c) => c.encode()),
    };
  },
  decode_identifier: (req) => identifier(req.macaroon),
  check_preimage(req) {
    const lsat = Lsat.fromHeader(req.header);
    lsat.setPreimage(req.preimage_hex); // throws on bad length / hash mismatch
    if (!lsat.isSatisfied()) throw new Error('isSatisfied() returned false');
    return {};
  },
  to_token(req) {
    const lsat = Lsat.fromHeader(req.header);
    lsat.setPreimage(req.preimage_hex);
    return { token: lsat.toToken() };
  },
};

// fields each op returns; all null when lsat-js threw
const FIELDS = {
  parse_challenge: ['payment_hash', 'invoice_amount', 'identifier', 'base_macaroon', 'caveats'],
  decode_identifier: ['version', 'payment_hash', 'token_id'],
  check_preimage: [],
  to_token: ['token'],
};

const req = JSON.parse(require('fs').readFileSync(0, 'utf8'));
if (!Object.hasOwn(ops, req.op)) {
  console.error(`lsat.js: unknown op ${JSON.stringify(req.op)}`);
  process.exit(2);
}
let out;
try {
  out = { ok: true, error: null, ...ops[req.op](req) };
} catch (e) {
  // lsat-js rejected the input: a result, not a harness failure
  out = { ok: false, error: e.message, ...Object.fromEntries(FIELDS[req.op].map((f) => [f, null])) };
}
process.stdout.write(JSON.stringify(out) + '\n');
