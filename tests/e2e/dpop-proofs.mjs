// DPoP proofs (RFC 9449) for the Envoy tests (tests/tests/envoy_dpop.rs), made by the npm
// `dpop` package, and the hostile variants that package would never make, signed with the
// same key through WebCrypto.
//
//   node dpop-proofs.mjs key ALG         prints {"privateJwk", "publicJwk", "jkt"} of a new
//                                        key pair (ALG: ES256, Ed25519, RS256, PS256); the
//                                        thumbprint is the `dpop` package's
//   node dpop-proofs.mjs proofs SPEC     prints {"NAME": "proof", ...} for SPEC's requests:
//                                        {"alg", "privateJwk", "publicJwk", "token",
//                                         "requests": [{"name", "kind", "htm", "htu",
//                                                       "nonce"?}]}
//
// Kinds: valid, other_key, other_token, no_token_hash (the `dpop` package's own proofs),
// stale, future, alg_none, hs256, typ_jwt (crafted: header and claims as the package makes
// them, one thing changed).
import { calculateThumbprint, generateKeyPair, generateProof } from 'dpop';
import { readFileSync } from 'node:fs';

const PARAMS = {
  ES256: { import: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  Ed25519: { import: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
  RS256: { import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, sign: { name: 'RSASSA-PKCS1-v1_5' } },
  PS256: { import: { name: 'RSA-PSS', hash: 'SHA-256' }, sign: { name: 'RSA-PSS', saltLength: 32 } },
};

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const part = (object) => b64url(new TextEncoder().encode(JSON.stringify(object)));

async function keyPair(alg, privateJwk, publicJwk) {
  const params = PARAMS[alg];
  return {
    privateKey: await crypto.subtle.importKey('jwk', privateJwk, params.import, false, ['sign']),
    publicKey: await crypto.subtle.importKey('jwk', publicJwk, params.import, true, ['verify']),
  };
}

async function crafted(spec, pair, request, change) {
  const header = { alg: spec.alg, typ: 'dpop+jwt', jwk: publicOnly(spec.publicJwk) };
  const hash = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(spec.token));
  const claims = {
    iat: Math.floor(Date.now() / 1000),
    jti: crypto.randomUUID(),
    htm: request.htm,
    htu: request.htu,
    ath: b64url(new Uint8Array(hash)),
  };
  change(header, claims);
  const input = `${part(header)}.${part(claims)}`;
  if (header.alg === 'none') {
    return `${input}.`;
  }
  if (header.alg === 'HS256') {
    const secret = await crypto.subtle.importKey(
      'raw', new TextEncoder().encode('a-shared-secret-of-32-bytes-long'),
      { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const mac = await crypto.subtle.sign('HMAC', secret, new TextEncoder().encode(input));
    return `${input}.${b64url(new Uint8Array(mac))}`;
  }
  const signature = await crypto.subtle.sign(
    PARAMS[spec.alg].sign, pair.privateKey, new TextEncoder().encode(input));
  return `${input}.${b64url(new Uint8Array(signature))}`;
}

function publicOnly(jwk) {
  const { kty, crv, x, y, n, e } = jwk;
  return Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined));
}

async function proof(spec, pair, request) {
  const now = Math.floor(Date.now() / 1000);
  switch (request.kind) {
    case 'valid':
      return generateProof(pair, request.htu, request.htm, request.nonce, spec.token);
    case 'other_key':
      return generateProof(await generateKeyPair(spec.alg), request.htu, request.htm, undefined, spec.token);
    case 'other_token':
      return generateProof(pair, request.htu, request.htm, undefined, `${spec.token}x`);
    case 'no_token_hash':
      return generateProof(pair, request.htu, request.htm);
    case 'stale':
      return crafted(spec, pair, request, (_, claims) => { claims.iat = now - 3600; });
    case 'future':
      return crafted(spec, pair, request, (_, claims) => { claims.iat = now + 3600; });
    case 'alg_none':
      return crafted(spec, pair, request, (header) => { header.alg = 'none'; });
    case 'hs256':
      return crafted(spec, pair, request, (header) => { header.alg = 'HS256'; });
    case 'typ_jwt':
      return crafted(spec, pair, request, (header) => { header.typ = 'JWT'; });
    default:
      throw new Error(`unknown kind ${request.kind}`);
  }
}

const [command, argument] = process.argv.slice(2);
if (command === 'key') {
  const pair = await generateKeyPair(argument, { extractable: true });
  const privateJwk = await crypto.subtle.exportKey('jwk', pair.privateKey);
  const publicJwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
  const jkt = await calculateThumbprint(pair.publicKey);
  process.stdout.write(JSON.stringify({ privateJwk, publicJwk, jkt }));
} else if (command === 'proofs') {
  const spec = JSON.parse(readFileSync(argument, 'utf8'));
  const pair = await keyPair(spec.alg, spec.privateJwk, spec.publicJwk);
  const out = {};
  for (const request of spec.requests) {
    out[request.name] = await proof(spec, pair, request);
  }
  process.stdout.write(JSON.stringify(out));
} else {
  process.stderr.write('usage: node dpop-proofs.mjs key ALG | proofs SPEC.json\n');
  process.exit(2);
}
