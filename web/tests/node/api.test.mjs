// Behaviours of the npm package's API beyond the shared vectors: errors, token decoding and
// scopes, PKCE, the authorization URL, scopedFetch, and the package's builds and exports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { createRequire } from 'node:module';

import * as scopegate from 'scopegate';
import {
  init, Policy, ScopeRules, decodeToken, scopesOf, parseChallenges, nextScopeRequest,
  assertScopesGranted, createPkce, authorizationUrl, scopedFetch,
  ScopegateError, InsufficientScopeError, ScopesNotGrantedError,
} from 'scopegate';

const root = process.env.SCOPEGATE_ROOT;
const policyText = readFileSync(join(root, 'examples/policy.json'), 'utf8');
const policy = Policy.fromJson(policyText);
const NOW = 1767225600;
const ISS = 'https://idp.scopegate.test';
const AUD = 'http://127.0.0.1:8080';

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** A token with these claims; its signature is junk, which only the gateway would notice. */
function jwt(claims, header = { alg: 'RS256', typ: 'at+jwt', kid: 'rs256' }) {
  return `${b64(header)}.${b64({ iss: ISS, aud: AUD, exp: NOW + 600, sub: 'alice', ...claims })}.c2ln`;
}

function throwsCode(fn, code, extra = {}) {
  let caught;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ScopegateError, `expected a ScopegateError ${code}, got ${caught}`);
  assert.ok(caught instanceof Error);
  assert.equal(caught.code, code, caught.message);
  for (const [k, v] of Object.entries(extra)) assert.deepEqual(caught[k], v, k);
  return caught;
}

async function rejectsWith(promise, cls, code) {
  let caught;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof cls, `expected ${cls.name}, got ${caught}`);
  assert.equal(caught.code, code);
  return caught;
}

test('every documented export exists, init() is a no-op promise in Node', async () => {
  for (const name of [
    'init', 'Policy', 'ScopeRules', 'decodeToken', 'scopesOf', 'parseChallenges', 'nextScopeRequest',
    'normalizePath', 'isValidScope', 'assertScopesGranted', 'createPkce', 'authorizationUrl',
    'scopedFetch', 'ScopegateError', 'InsufficientScopeError', 'ScopesNotGrantedError',
  ]) {
    assert.ok(name in scopegate, name);
  }
  assert.equal(await init(), undefined);
});

test('Policy.fromJson: errors carry the JSON path and a stable code', () => {
  const doc = JSON.parse(policyText);
  doc.routes[3].path = '/a/**/b';
  const err = throwsCode(() => Policy.fromJson(JSON.stringify(doc)), 'invalid_policy', { path: 'routes[3].path' });
  assert.match(err.message, /\*\*/);
  throwsCode(() => Policy.fromJson('{"version": 1'), 'invalid_policy');
  throwsCode(() => Policy.fromJson(42), 'invalid_argument');
  throwsCode(() => new Policy(), 'invalid_argument');
  assert.equal(policy.realm, 'scopegate-demo');
  assert.deepEqual(policy.resourceMetadata.resource, AUD);
  assert.ok(policy.resourceMetadata.scopes_supported.includes('resource:write'));
});

test('decodeToken: header and claims, no signature check', () => {
  const token = jwt({ scope: 'resource:read' });
  const { header, claims } = decodeToken(token);
  assert.deepEqual(header, { alg: 'RS256', typ: 'at+jwt', kid: 'rs256' });
  assert.equal(claims.scope, 'resource:read');
  assert.equal(claims.sub, 'alice');
  throwsCode(() => decodeToken('abc'), 'invalid_token', { reason: 'token_malformed' });
  throwsCode(() => decodeToken('x'.repeat(17 * 1024)), 'invalid_token', { reason: 'token_too_large' });
  throwsCode(() => decodeToken(undefined), 'invalid_argument');
});

test('scopesOf: claims, and roles mapped by the policy as the gateway does', () => {
  const token = jwt({ scope: 'openid resource:read', permissions: ['order'], roles: ['resource-admin'] });
  assert.deepEqual(scopesOf(token), ['openid', 'order', 'resource:read']);
  assert.deepEqual(scopesOf(token, policy), ['openid', 'order', 'resource:read', 'resource:write']);
  assert.deepEqual(policy.scopesOf(jwt({ 'https://scopegate.test/roles': 'inventory-manager' })), ['inventory.write']);
  throwsCode(() => scopesOf(jwt({ scope: 'a "b"' })), 'invalid_token', { reason: 'invalid_scope_claim' });
  throwsCode(() => scopesOf(jwt({}), {}), 'invalid_argument');
});

test('check: the gateway\'s answer, with missing scopes and the challenge', () => {
  const read = jwt({ scope: 'openid resource:read' });
  const denied = policy.check('POST', 'http://127.0.0.1:8080/api/resources?x=1#f', read, NOW);
  assert.equal(denied.allowed, false);
  assert.equal(denied.status, 403);
  assert.deepEqual(denied.missing, ['resource:write']);
  assert.equal(
    denied.challenge,
    'Bearer realm="scopegate-demo", error="insufficient_scope", scope="resource:write", resource_metadata="http://127.0.0.1:8080/.well-known/oauth-protected-resource"',
  );
  const allowed = policy.check('GET', '/api/resources', read, new Date(NOW * 1000));
  assert.deepEqual([allowed.allowed, allowed.status, allowed.missing, allowed.challenge], [true, null, [], null]);
  const expired = policy.check('GET', '/api/resources', read, NOW + 600 + 61);
  assert.deepEqual([expired.status, expired.error, expired.tokenError], [401, 'invalid_token', 'expired']);
  const none = policy.check('GET', '/api/resources');
  assert.deepEqual([none.status, none.error], [401, 'unauthorized']);
  // Without `now`, the clock: this token expired long ago.
  assert.equal(policy.check('GET', '/api/resources', jwt({ scope: 'resource:read', exp: 1000 })).tokenError, 'expired');
  throwsCode(() => policy.check('GET', 'api/resources', read), 'invalid_argument');
  throwsCode(() => policy.check('GET', '/api/resources', read, -1), 'invalid_argument');
  throwsCode(() => policy.check('GET', '/api/resources', read, new Date(NaN)), 'invalid_argument');
  throwsCode(() => policy.check(null, '/api/resources'), 'invalid_argument');
});

test('parseChallenges: several challenges, commas and escapes inside quoted strings', () => {
  const list = parseChallenges('Basic realm="x", Bearer realm="a\\"b", error="insufficient_scope", scope="a, b=c d"');
  assert.equal(list.length, 2);
  assert.equal(list[1].scheme, 'Bearer');
  assert.deepEqual(list[1].params, { realm: 'a"b', error: 'insufficient_scope', scope: 'a, b=c d' });
  throwsCode(() => parseChallenges('Bearer realm="unterminated'), 'invalid_challenge');
});

test('nextScopeRequest: accumulates, minimises, never loops', () => {
  const next = nextScopeRequest('openid resource:read', ['resource:write', 'resource:write']);
  assert.deepEqual(next, { add: ['resource:write'], scope: 'openid resource:read resource:write' });
  const granted = nextScopeRequest(next.scope.split(' '), ['resource:write']);
  assert.deepEqual(granted.add, []);
  assert.deepEqual(nextScopeRequest(['order'], ['order:item']).add, []);
  assert.deepEqual(nextScopeRequest(['inventory:price.write'], ['inventory.write']).scope, 'inventory.write');
  assert.deepEqual(nextScopeRequest([], ['files/x'], { separator: '/' }).add, ['files/x']);
  assert.ok(new ScopeRules({ separator: '/' }).covers('files', 'files/x'));
  assert.ok(!new ScopeRules({ writeSuffix: null }).covers('a', 'a.write'));
  throwsCode(() => policy.nextScopeRequest([], ['transaction-']), 'invalid_scope', { reason: 'bare_prefix' });
  throwsCode(() => nextScopeRequest([], ['bad scope']), 'invalid_scope', { reason: 'invalid_scope' });
  throwsCode(() => nextScopeRequest([], 7), 'invalid_argument');
});

test('assertScopesGranted: a token with fewer scopes than requested is reported', () => {
  const token = jwt({ scope: 'openid resource:read' });
  assert.deepEqual(assertScopesGranted('openid resource:read', token), ['openid', 'resource:read']);
  const err = throwsCode(() => assertScopesGranted(['openid', 'resource:write'], token, policy), 'scopes_not_granted');
  assert.ok(err instanceof ScopesNotGrantedError);
  assert.deepEqual(err.notGranted, ['resource:write']);
  assert.deepEqual(assertScopesGranted(['resource:write'], jwt({ roles: ['resource-admin'] }), policy), ['resource:write']);
});

test('createPkce: 43-character verifier, S256 challenge', async () => {
  const a = await createPkce();
  const b = await createPkce();
  assert.match(a.codeVerifier, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a.codeVerifier, b.codeVerifier);
  assert.equal(a.codeChallengeMethod, 'S256');
  assert.equal(a.codeChallenge, createHash('sha256').update(a.codeVerifier).digest('base64url'));
});

test('authorizationUrl: code flow with PKCE, state and RFC 8707 resources', async () => {
  const pkce = await createPkce();
  const url = new URL(
    authorizationUrl({
      authorizationEndpoint: 'https://idp.example/authorize?tenant=t1',
      clientId: 'spa',
      redirectUri: 'http://127.0.0.1:5173/callback',
      scopes: ['openid', 'resource:write'],
      state: 's&t=1',
      codeChallenge: pkce.codeChallenge,
      resource: ['https://api.example/', 'https://other.example/'],
      extraParams: { prompt: 'consent' },
    }),
  );
  assert.equal(url.origin + url.pathname, 'https://idp.example/authorize');
  const p = url.searchParams;
  assert.equal(p.get('tenant'), 't1');
  assert.equal(p.get('response_type'), 'code');
  assert.equal(p.get('client_id'), 'spa');
  assert.equal(p.get('redirect_uri'), 'http://127.0.0.1:5173/callback');
  assert.equal(p.get('scope'), 'openid resource:write');
  assert.equal(p.get('state'), 's&t=1');
  assert.equal(p.get('code_challenge'), pkce.codeChallenge);
  assert.equal(p.get('code_challenge_method'), 'S256');
  assert.deepEqual(p.getAll('resource'), ['https://api.example/', 'https://other.example/']);
  assert.equal(p.get('prompt'), 'consent');
  const base = { authorizationEndpoint: 'https://idp.example/authorize', clientId: 'spa', redirectUri: 'https://app.example/cb', scopes: 'openid', codeChallenge: pkce.codeChallenge };
  assert.ok(authorizationUrl(base).includes('scope=openid'));
  throwsCode(() => authorizationUrl({ ...base, scopes: ['ok', 'not"ok'] }), 'invalid_argument');
  throwsCode(() => authorizationUrl({ ...base, codeChallenge: 'plain' }), 'invalid_argument');
  throwsCode(() => authorizationUrl({ ...base, resource: 'https://api.example/#frag' }), 'invalid_argument');
  throwsCode(() => authorizationUrl({ ...base, authorizationEndpoint: '/authorize' }), 'invalid_argument');
  throwsCode(() => authorizationUrl({ ...base, extraParams: { scope: 'x' } }), 'invalid_argument');
});

/** A fake fetch that records its calls and answers with `respond(request)`. */
function fakeFetch(respond) {
  const calls = [];
  const fetch = async (request) => {
    calls.push(request);
    return respond(request);
  };
  return { fetch, calls };
}

test('scopedFetch: refuses locally, before any network call, with the next scope request', async () => {
  const { fetch, calls } = fakeFetch(() => new Response('{}'));
  const token = jwt({ scope: 'openid resource:read' });
  const options = { policy, getToken: async () => token, fetch, now: NOW };
  const err = await rejectsWith(
    scopedFetch('http://127.0.0.1:8080/api/resources', { method: 'POST', body: '{}' }, options),
    InsufficientScopeError,
    'insufficient_scope',
  );
  assert.equal(calls.length, 0);
  assert.equal(err.source, 'precheck');
  assert.equal(err.status, 403);
  assert.deepEqual(err.missing, ['resource:write']);
  assert.deepEqual(err.scopeRequest, { add: ['resource:write'], scope: 'openid resource:read resource:write' });

  // Other refusals the gateway would give are refused too, with its error code.
  const noToken = await rejectsWith(
    scopedFetch('http://127.0.0.1:8080/api/resources', undefined, { ...options, getToken: () => null }),
    ScopegateError,
    'unauthorized',
  );
  assert.equal(noToken.status, 401);
  await rejectsWith(
    scopedFetch('http://127.0.0.1:8080/api/resources', {}, { ...options, now: NOW + 10_000 }),
    ScopegateError,
    'invalid_token',
  );
  assert.equal(calls.length, 0);
});

test('scopedFetch: sends the bearer token when the pre-check passes', async () => {
  const { fetch, calls } = fakeFetch(() => new Response('ok', { status: 200 }));
  const token = jwt({ scope: 'resource:read' });
  const response = await scopedFetch('http://127.0.0.1:8080/api/resources', undefined, { policy, getToken: () => token, fetch, now: NOW });
  assert.equal(await response.text(), 'ok');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].headers.get('Authorization'), `Bearer ${token}`);
  // Public routes pass without a token.
  await scopedFetch('http://127.0.0.1:8080/api/public/x', undefined, { policy, getToken: () => undefined, fetch, now: NOW });
  assert.equal(calls.length, 2);
  assert.equal(calls[1].headers.get('Authorization'), null);
});

test('scopedFetch: a 403 insufficient_scope from the server becomes the same error', async () => {
  const token = jwt({ scope: 'openid resource:read' });
  const challenge = 'Bearer realm="api", error="insufficient_scope", scope="resource:read order"';
  const withHeader = fakeFetch(() => new Response('{"error":"insufficient_scope"}', { status: 403, headers: { 'WWW-Authenticate': challenge } }));
  const err = await rejectsWith(
    scopedFetch('http://127.0.0.1:8080/api/resources', undefined, { policy, getToken: () => token, fetch: withHeader.fetch, now: NOW }),
    InsufficientScopeError,
    'insufficient_scope',
  );
  assert.equal(err.source, 'server');
  // The challenge names everything the request needs; the token lacks only `order`.
  assert.deepEqual(err.required, ['resource:read', 'order']);
  assert.deepEqual(err.missing, ['order']);
  assert.deepEqual(err.scopeRequest, { add: ['order'], scope: 'openid resource:read order' });
  assert.equal(err.response.status, 403);

  // CORS hid the header: the JSON body says the same.
  const bodyOnly = fakeFetch(() => new Response('{"error":"insufficient_scope","scope":"order"}', { status: 403, headers: { 'Content-Type': 'application/json' } }));
  const err2 = await rejectsWith(
    scopedFetch('http://127.0.0.1:8080/api/resources', undefined, { policy, getToken: () => token, fetch: bodyOnly.fetch, now: NOW }),
    InsufficientScopeError,
    'insufficient_scope',
  );
  assert.deepEqual(err2.missing, ['order']);

  // The gateway's body says which of the needed scopes are missing: taken as it is.
  const withBody = fakeFetch(() => new Response('{"error":"insufficient_scope","scope":"resource:read order","missing":"order"}', {
    status: 403,
    headers: { 'WWW-Authenticate': challenge, 'Content-Type': 'application/json' },
  }));
  const err3 = await rejectsWith(
    scopedFetch('http://127.0.0.1:8080/api/resources', undefined, { policy, getToken: () => token, fetch: withBody.fetch, now: NOW }),
    InsufficientScopeError,
    'insufficient_scope',
  );
  assert.deepEqual([err3.required, err3.missing], [['resource:read', 'order'], ['order']]);

  // Any other 403 is the caller's response.
  const other = fakeFetch(() => new Response('nope', { status: 403, headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } }));
  const response = await scopedFetch('http://127.0.0.1:8080/api/resources', undefined, { policy, getToken: () => token, fetch: other.fetch, now: NOW });
  assert.equal(response.status, 403);
  await rejectsWith(scopedFetch('/x', undefined, { policy: {}, getToken: () => token }), ScopegateError, 'invalid_argument');
});

test('the web build refuses to run before init(), then answers like the node build', async () => {
  const web = await import('scopegate/web');
  throwsCode(() => web.Policy.fromJson(policyText), 'not_initialized');
  const require = createRequire(import.meta.url);
  const wasm = readFileSync(join(require.resolve('scopegate/package.json'), '../web/scopegate_web_bg.wasm'));
  await web.init(wasm);
  await web.init(); // once loaded, later calls resolve at once
  const token = jwt({ scope: 'openid resource:read' });
  const webPolicy = web.Policy.fromJson(policyText);
  assert.deepEqual(webPolicy.check('POST', '/api/resources', token, NOW), policy.check('POST', '/api/resources', token, NOW));
});

test('the bundler build (WebAssembly ESM integration) answers like the node build', async () => {
  const { execFileSync } = await import('node:child_process');
  const token = jwt({ scope: 'openid resource:read' });
  const script = `
    import { init, Policy, scopesOf } from 'scopegate/bundler';
    await init();
    const policy = Policy.fromJson(process.env.POLICY);
    console.log(JSON.stringify([policy.check('POST', '/api/resources', process.env.TOKEN, ${NOW}), scopesOf(process.env.TOKEN)]));
  `;
  // Node imports .wasm as an ES module only behind this flag, as bundlers do natively.
  const out = execFileSync(process.execPath, ['--experimental-wasm-modules', '--no-warnings', '--input-type=module', '-e', script], {
    env: { ...process.env, POLICY: policyText, TOKEN: token },
    encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(out), [policy.check('POST', '/api/resources', token, NOW), scopesOf(token)]);
});

test('free() releases a policy: using it afterwards throws', () => {
  const p = Policy.fromJson(policyText);
  assert.equal(p.check('GET', '/health').allowed, true);
  p.free();
  assert.throws(() => p.check('GET', '/health'));
});

test('step-up (RFC 9470): acr_values and max_age from a denial into the next authorization request', async () => {
  const bank = Policy.fromJson({
    version: 1, realm: 'bank', resource: 'https://bank.example',
    issuers: [{ issuer: ISS, audiences: ['https://bank.example'], algorithms: ['RS256'], jwks_uri: 'https://idp.example/jwks', jwks_cluster: 'idp' }],
    scopes: { max_age: { payment: 300 }, acr_values: { payment: ['urn:bank:mfa', 'urn:bank:hwk'] } },
    routes: [{ path: '/payments', methods: ['POST'], require: 'payment' }],
  });
  const token = jwt({ aud: 'https://bank.example', scope: 'payment', auth_time: NOW - 600, acr: 'urn:bank:pwd' });
  const check = bank.check('POST', 'https://bank.example/payments', token, NOW);
  assert.equal(check.code, 'deny_step_up');
  assert.deepEqual(check.acrValues, ['urn:bank:mfa', 'urn:bank:hwk']);
  assert.equal(check.maxAge, 300);
  assert.equal(
    check.challenge,
    'Bearer realm="bank", error="insufficient_user_authentication", error_description="A more recent authentication of a different level is required", acr_values="urn:bank:mfa urn:bank:hwk", max_age=300, resource_metadata="https://bank.example/.well-known/oauth-protected-resource"',
  );
  // The pre-check refuses before sending, with what the next sign-in must ask for ...
  const { fetch, calls } = fakeFetch(() => new Response('ok'));
  const local = await rejectsWith(
    scopedFetch('https://bank.example/payments', { method: 'POST' }, { policy: bank, getToken: () => token, fetch, now: NOW }),
    ScopegateError,
    'insufficient_user_authentication',
  );
  assert.equal(calls.length, 0);
  assert.deepEqual([local.acrValues, local.maxAge, local.source], [['urn:bank:mfa', 'urn:bank:hwk'], 300, 'precheck']);
  // ... and so does the server's 401 when the client's policy did not know.
  const fresh = jwt({ aud: 'https://bank.example', scope: 'payment', auth_time: NOW - 60, acr: 'urn:bank:mfa' });
  const server = fakeFetch(() => new Response('{"error":"insufficient_user_authentication","acr_values":"urn:bank:hwk"}', {
    status: 401,
    headers: { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Bearer realm="bank", error="insufficient_user_authentication", acr_values="urn:bank:hwk"' },
  }));
  const remote = await rejectsWith(
    scopedFetch('https://bank.example/payments', { method: 'POST' }, { policy: bank, getToken: () => fresh, fetch: server.fetch, now: NOW }),
    ScopegateError,
    'insufficient_user_authentication',
  );
  assert.equal(server.calls.length, 1);
  assert.deepEqual([remote.acrValues, remote.maxAge, remote.source, remote.status], [['urn:bank:hwk'], undefined, 'server', 401]);
  // The next authorization request carries them.
  const pkce = await createPkce();
  const url = new URL(authorizationUrl({
    authorizationEndpoint: 'https://idp.example/authorize', clientId: 'spa', redirectUri: 'https://app.example/cb',
    scopes: 'payment', codeChallenge: pkce.codeChallenge, acrValues: local.acrValues, maxAge: local.maxAge,
  }));
  assert.equal(url.searchParams.get('acr_values'), 'urn:bank:mfa urn:bank:hwk');
  assert.equal(url.searchParams.get('max_age'), '300');
  const base = { authorizationEndpoint: 'https://idp.example/authorize', clientId: 'spa', redirectUri: 'https://app.example/cb', scopes: 'payment', codeChallenge: pkce.codeChallenge };
  throwsCode(() => authorizationUrl({ ...base, acrValues: ['two words'] }), 'invalid_argument');
  throwsCode(() => authorizationUrl({ ...base, maxAge: -1 }), 'invalid_argument');
  throwsCode(() => authorizationUrl({ ...base, extraParams: { acr_values: 'x' } }), 'invalid_argument');
});
