// Runs in headless Chromium, served from 127.0.0.1 by run.mjs: the web build of the
// package as a page loads it, timed, and the browser-only parts (Web Crypto, fetch, CORS-free
// same-origin challenges) exercised against run.mjs's little API.
import {
  init, Policy, scopedFetch, createPkce, authorizationUrl, parseChallenges,
  InsufficientScopeError, ScopegateError,
} from '/pkg/web/index.js';

const results = [];
async function test(name, fn) {
  try {
    await fn();
    results.push({ name, ok: true });
  } catch (err) {
    results.push({ name, ok: false, error: `${err && err.stack ? err.stack : err}` });
  }
}
function assert(condition, message) {
  if (!condition) throw new Error(message);
}

const started = performance.now();
await init();
const initMs = performance.now() - started;
// How much of it the fetch of the .wasm took (request start to last byte), to tell the
// network from compiling and instantiating.
const wasmFetch = performance.getEntriesByType('resource').find((e) => e.name.endsWith('.wasm'));
const fetchMs = wasmFetch ? wasmFetch.responseEnd - wasmFetch.startTime : NaN;
// And the time after its last byte: the end of compiling, instantiating, the glue's start.
const afterFetchMs = wasmFetch ? started + initMs - wasmFetch.responseEnd : NaN;

const NOW = 1767225600;
const b64 = (v) => btoa(JSON.stringify(v)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const jwt = (scope) =>
  `${b64({ alg: 'ES256', typ: 'at+jwt' })}.${b64({ iss: 'https://idp.scopegate.test', aud: 'http://127.0.0.1:8080', exp: NOW + 600, scope })}.c2ln`;
const policy = Policy.fromJson(await (await fetch('/policy.json')).text());
const hits = async () => (await (await fetch('/hits')).json()).count;

await test('init() then check()', () => {
  const answer = policy.check('POST', '/api/resources', jwt('resource:read'), NOW);
  assert(answer.status === 403 && answer.missing[0] === 'resource:write', JSON.stringify(answer));
});

await test('createPkce() with Web Crypto', async () => {
  const a = await createPkce();
  const b = await createPkce();
  assert(/^[A-Za-z0-9_-]{43}$/.test(a.codeVerifier) && /^[A-Za-z0-9_-]{43}$/.test(a.codeChallenge), JSON.stringify(a));
  assert(a.codeVerifier !== b.codeVerifier, 'verifiers repeat');
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(a.codeVerifier)));
  assert(b64url(digest) === a.codeChallenge, 'challenge is not S256 of the verifier');
  const url = new URL(authorizationUrl({
    authorizationEndpoint: 'https://idp.example/authorize', clientId: 'spa', redirectUri: location.origin + '/cb',
    scopes: ['openid', 'resource:write'], state: 's', codeChallenge: a.codeChallenge, resource: 'http://127.0.0.1:8080',
  }));
  assert(url.searchParams.get('code_challenge_method') === 'S256', url.href);
});
function b64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

await test('scopedFetch refuses locally: the server sees nothing', async () => {
  const before = await hits();
  let caught;
  try {
    await scopedFetch('/api/resources', { method: 'POST', body: '{}' }, { policy, getToken: () => jwt('openid resource:read'), now: NOW });
  } catch (err) {
    caught = err;
  }
  assert(caught instanceof InsufficientScopeError && caught.source === 'precheck', `${caught}`);
  assert(caught.scopeRequest.scope === 'openid resource:read resource:write', caught.scopeRequest.scope);
  assert((await hits()) === before, 'a request reached the server');
});

await test('scopedFetch sends the token and turns a server 403 into InsufficientScopeError', async () => {
  const before = await hits();
  let caught;
  try {
    // The policy lets this token through; the (stricter) server refuses it.
    await scopedFetch('/api/resources', undefined, { policy, getToken: () => jwt('openid resource:read'), now: NOW });
  } catch (err) {
    caught = err;
  }
  assert((await hits()) === before + 1, 'the request was not sent');
  assert(caught instanceof InsufficientScopeError && caught.source === 'server', `${caught}`);
  // The challenge names every scope the request needs; the token lacks only `order`.
  assert(caught.required.join(' ') === 'resource:read order', caught.required.join(' '));
  assert(caught.missing.join(' ') === 'order', caught.missing.join(' '));
  assert(caught.scopeRequest.add.join(' ') === 'order', JSON.stringify(caught.scopeRequest));
  assert(caught.response.status === 403, 'no response');
});

await test('errors are Error objects with a stable code', () => {
  try {
    parseChallenges('Bearer realm="x');
  } catch (err) {
    assert(err instanceof Error && err instanceof ScopegateError && err.code === 'invalid_challenge', `${err}`);
    return;
  }
  throw new Error('no error');
});

// Compiling the module alone, from bytes already in memory (no fetch, no instantiation):
// the part of init() that the .wasm's size decides. V8 keeps the modules it compiled by
// their bytes, so the same bytes again may come from that cache: the bytes are compiled
// as they are (`compileMs`) and with a custom section of random bytes appended, which no
// cache holds (`freshCompileMs`).
let compileMs = NaN;
let freshCompileMs = NaN;
if (wasmFetch) {
  const bytes = new Uint8Array(await (await fetch(wasmFetch.name)).arrayBuffer());
  let started = performance.now();
  await WebAssembly.compile(bytes);
  compileMs = performance.now() - started;
  // A custom section (id 0): 10 bytes, a 1-byte name "x" and 8 random bytes.
  const section = new Uint8Array([0, 10, 1, 0x78, ...crypto.getRandomValues(new Uint8Array(8))]);
  const fresh = new Uint8Array(bytes.length + section.length);
  fresh.set(bytes);
  fresh.set(section, bytes.length);
  started = performance.now();
  await WebAssembly.compile(fresh);
  freshCompileMs = performance.now() - started;
}

window.__results = {
  initMs, fetchMs, afterFetchMs, compileMs, freshCompileMs, results, userAgent: navigator.userAgent,
};
