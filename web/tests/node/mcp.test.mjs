// The package's MCP client helpers: `policy.mcpAccess`, `policy.mcpScopeRequest` and
// `withHeldScopes`, on the policy of the shared vectors' "mcp" suite, with its signed tokens
// and with tokens signed here by a key added to that policy. The last tests drive the MCP
// TypeScript SDK's own StreamableHTTPClientTransport (web/package.json's devDependency)
// against a fake server whose every answer is the core's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { generateKeyPairSync, sign } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { Policy, ScopeRules, ScopegateError, withHeldScopes } from 'scopegate';

const root = process.env.SCOPEGATE_ROOT;
assert.ok(root, 'SCOPEGATE_ROOT must name the repository (scripts/test-web sets it)');
const suite = JSON.parse(readFileSync(join(root, 'tests/vectors/decisions.json'), 'utf8')).suites.find((s) => s.name === 'mcp');
const NOW = suite.now;
const URL_MCP = 'http://127.0.0.1:8080/mcp';
const ISS = 'https://idp.scopegate.test';

/** The vector tokens by their scope claim (`mcp:tools expired` for the expired one). */
const vectorTokens = {};
for (const c of suite.cases) {
  for (const value of c.request.authorization ?? []) {
    const token = value.slice('Bearer '.length);
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url'));
    vectorTokens[claims.scope + (claims.exp <= NOW ? ' expired' : '')] ??= token;
  }
}

// An Ed25519 key of our own, added to the issuer's key set, to sign tokens with any claims.
const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'node-ed', use: 'sig' };
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** A token signed with that key; `exp` in 2100 so that the clock (the wrapper's `url` check) takes it too. */
function mint(claims) {
  const input = `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: 'node-ed' })}.${b64({
    iss: ISS, aud: URL_MCP, sub: 'alice', exp: 4102444800, ...claims,
  })}`;
  return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
}

/** The suite's policy with our key, plus `change(doc)`. */
function policyWith(change = () => {}) {
  const doc = structuredClone(suite.policy);
  doc.issuers[0].jwks.keys.push(jwk);
  change(doc);
  return Policy.fromJson(doc);
}
const policy = policyWith();

function throwsCode(fn, code) {
  let caught;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ScopegateError, `expected a ScopegateError ${code}, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

async function rejectsCode(promise, code) {
  let caught;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ScopegateError, `expected a ScopegateError ${code}, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
}

/** The JSON-RPC body mcpAccess decides a call by. */
const callBody = (method, params) => JSON.stringify({ jsonrpc: '2.0', id: 1, method, params });

test('mcpAccess: each tool, prompt and resource as the core decides its call, with the scope to ask for', () => {
  const token = vectorTokens['mcp:tools'];
  // The shapes tools/list, prompts/list and resources/list return, extra fields and all.
  const tools = [
    { name: 'echo', description: 'Echoes', inputSchema: { type: 'object' } },
    { name: 'get-env', inputSchema: { type: 'object' } },
  ];
  const access = policy.mcpAccess({
    url: URL_MCP,
    token,
    tools,
    prompts: [{ name: 'simple-prompt', description: 'x' }],
    resources: [{ uri: 'demo://docs/7', name: 'seven' }, 'demo://docs/7/history', { uri: 'demo://other/1' }],
  }, NOW);
  assert.deepEqual(access, {
    tools: [
      { name: 'echo', allowed: true, required: [], missing: [], scope: null },
      { name: 'get-env', allowed: false, required: ['mcp:admin'], missing: ['mcp:admin'], scope: 'mcp:tools mcp:admin' },
    ],
    prompts: [
      { name: 'simple-prompt', allowed: false, required: ['mcp:prompts'], missing: ['mcp:prompts'], scope: 'mcp:tools mcp:prompts' },
    ],
    resources: [
      // The URI template binds the prefix scope doc-{id}.
      { uri: 'demo://docs/7', allowed: false, required: ['doc-7'], missing: ['doc-7'], scope: 'mcp:tools doc-7' },
      {
        uri: 'demo://docs/7/history', allowed: false, required: ['doc-7', 'mcp:history'],
        missing: ['doc-7', 'mcp:history'], scope: 'mcp:tools doc-7 mcp:history',
      },
      // No template matches: the rule for resources/read.
      { uri: 'demo://other/1', allowed: false, required: ['mcp:resources'], missing: ['mcp:resources'], scope: 'mcp:tools mcp:resources' },
    ],
  });

  // Every answer is checkRequest's for that body, POSTed to the URL with the token.
  for (const [list, method, key] of [['tools', 'tools/call', 'name'], ['prompts', 'prompts/get', 'name'], ['resources', 'resources/read', 'uri']]) {
    for (const entry of access[list]) {
      const answer = policy.checkRequest(
        { method: 'POST', url: URL_MCP, authorization: [`Bearer ${token}`], body: callBody(method, { [key]: entry[key] }) },
        NOW,
      );
      assert.equal(entry.allowed, answer.allowed, entry[key]);
      assert.deepEqual(entry.required, answer.required, entry[key]);
      assert.deepEqual(entry.missing, answer.missing, entry[key]);
    }
  }

  // Names alone, a URL object, the clock as a Date, and empty lists by default.
  const byName = policy.mcpAccess({ url: new URL(URL_MCP), token, tools: ['echo', 'get-env'] }, new Date(NOW * 1000));
  assert.deepEqual(byName.tools, access.tools);
  assert.deepEqual(byName.prompts, []);
  assert.deepEqual(byName.resources, []);
  assert.deepEqual(policy.mcpAccess({ url: '/mcp', token }, NOW), { tools: [], prompts: [], resources: [] });
});

test('mcpAccess: what a broader token and a document scope can use', () => {
  // `mcp` covers mcp:tools, mcp:admin, mcp:prompts, ...; the document scopes are apart.
  const broad = policy.mcpAccess({
    url: URL_MCP, token: vectorTokens.mcp, tools: ['echo', 'get-env'], prompts: ['p'], resources: ['demo://docs/7', 'demo://other/1'],
  }, NOW);
  assert.deepEqual(broad.tools.map((t) => t.allowed), [true, true]);
  assert.equal(broad.prompts[0].allowed, true);
  assert.deepEqual(broad.resources[0], { uri: 'demo://docs/7', allowed: false, required: ['doc-7'], missing: ['doc-7'], scope: 'mcp doc-7' });
  assert.equal(broad.resources[1].allowed, true);

  const doc = policy.mcpAccess({ url: URL_MCP, token: vectorTokens['doc-7'], resources: ['demo://docs/7', 'demo://docs/8', 'demo://docs/7/history'] }, NOW);
  assert.deepEqual(doc.resources, [
    { uri: 'demo://docs/7', allowed: true, required: [], missing: [], scope: null },
    { uri: 'demo://docs/8', allowed: false, required: ['doc-8'], missing: ['doc-8'], scope: 'doc-7 doc-8' },
    // `required` names the whole alternative (the challenge's scope), `missing` what is lacking.
    { uri: 'demo://docs/7/history', allowed: false, required: ['doc-7', 'mcp:history'], missing: ['mcp:history'], scope: 'doc-7 mcp:history' },
  ]);
});

test('mcpScopeRequest: held plus needed, minimised, never dropping a held scope; once granted, allowed', () => {
  // A tool whose rule asks for the parent scope `mcp`, which covers the held mcp:tools.
  const deployPolicy = policyWith((doc) => doc.routes[0].mcp.rules.push({ method: 'tools/call', name: 'deploy', require: 'mcp' }));
  const token = mint({ scope: 'openid mcp:tools doc-8' });
  const held = deployPolicy.scopesOf(token);
  assert.deepEqual(held, ['doc-8', 'mcp:tools', 'openid']); // the core's order: sorted

  const getEnv = deployPolicy.mcpScopeRequest({ url: URL_MCP, token, method: 'tools/call', name: 'get-env' }, NOW);
  assert.deepEqual(getEnv, { allowed: false, required: ['mcp:admin'], missing: ['mcp:admin'], scope: 'doc-8 mcp:tools openid mcp:admin' });

  const deploy = deployPolicy.mcpScopeRequest({ url: URL_MCP, token, method: 'tools/call', name: 'deploy' }, NOW);
  // mcp:tools is left out of the string because `mcp` covers it: nothing held is lost.
  assert.deepEqual(deploy, { allowed: false, required: ['mcp'], missing: ['mcp'], scope: 'doc-8 openid mcp' });
  for (const scope of held) {
    assert.ok(deploy.scope.split(' ').some((s) => deployPolicy.covers(s, scope)), `${scope} is still covered`);
  }

  // A token granted exactly that request can make the call, and asks for nothing more.
  for (const [request, granted] of [[{ name: 'get-env' }, getEnv.scope], [{ name: 'deploy' }, deploy.scope]]) {
    const after = deployPolicy.mcpScopeRequest({ url: URL_MCP, token: mint({ scope: granted }), method: 'tools/call', ...request }, NOW);
    assert.deepEqual(after, { allowed: true, required: [], missing: [], scope: null }, request.name);
  }

  // Resources and prompts by their method; the same answer as mcpAccess gives.
  const history = policy.mcpScopeRequest({ url: URL_MCP, token: vectorTokens['doc-8 mcp:resources'], method: 'resources/read', uri: 'demo://docs/7/history' }, NOW);
  assert.deepEqual(history, {
    allowed: false, required: ['doc-7', 'mcp:history'], missing: ['doc-7', 'mcp:history'], scope: 'doc-8 mcp:resources doc-7 mcp:history',
  });
  const prompt = policy.mcpScopeRequest({ url: URL_MCP, token: vectorTokens['mcp:tools'], method: 'prompts/get', name: 'p' }, NOW);
  const { name, ...fromAccess } = policy.mcpAccess({ url: URL_MCP, token: vectorTokens['mcp:tools'], prompts: ['p'] }, NOW).prompts[0];
  assert.equal(name, 'p');
  assert.deepEqual(prompt, fromAccess);
});

test('mcpAccess and mcpScopeRequest take the SDK\'s OAuthTokens: the token response\'s scope is held too', () => {
  const tokens = {
    access_token: vectorTokens['mcp:tools'], token_type: 'Bearer', expires_in: 600, scope: 'openid offline_access mcp:tools',
  };
  assert.deepEqual(policy.mcpScopeRequest({ url: URL_MCP, token: tokens, method: 'tools/call', name: 'get-env' }, NOW), {
    allowed: false, required: ['mcp:admin'], missing: ['mcp:admin'], scope: 'openid offline_access mcp:tools mcp:admin',
  });
  assert.equal(policy.mcpAccess({ url: URL_MCP, token: tokens, tools: ['echo'] }, NOW).tools[0].allowed, true);
  // No tokens yet (the SDK's tokens() before sign-in).
  assert.equal(policy.mcpAccess({ url: URL_MCP, token: undefined, tools: ['echo'] }, NOW).tools[0].reason, 'deny_no_token');
});

test('no scope helps: the reason is the core\'s decision code', () => {
  const call = (token, extra = {}, p = policy) =>
    p.mcpScopeRequest({ url: URL_MCP, token, method: 'tools/call', name: 'get-env', ...extra }, NOW);
  const refused = { allowed: false, required: [], missing: [], scope: null };

  assert.deepEqual(call(null), { ...refused, reason: 'deny_no_token' });
  assert.deepEqual(call(vectorTokens['mcp:tools expired']), { ...refused, reason: 'deny_invalid_token', tokenError: 'expired' });
  assert.deepEqual(call(mint({ aud: 'https://elsewhere.example', scope: 'mcp:admin' })), {
    ...refused, reason: 'deny_invalid_token', tokenError: 'wrong_audience',
  });
  assert.deepEqual(call('not-a-jwt'), { ...refused, reason: 'deny_invalid_token', tokenError: 'token_malformed' });

  // RFC 9470 step-up: the scope is held, the authentication is too old.
  const stepUp = policyWith((doc) => {
    doc.scopes.max_age = { 'mcp:admin': 300 };
  });
  assert.deepEqual(call(mint({ scope: 'mcp:admin', auth_time: NOW - 3600 }), {}, stepUp), {
    ...refused, reason: 'deny_step_up', maxAge: 300,
  });
  assert.equal(call(mint({ scope: 'mcp:admin', auth_time: NOW - 60 }), {}, stepUp).allowed, true);
  // An `acr_values` step-up: the classes to ask for, for authorizationUrl({acrValues}).
  const mfa = policyWith((doc) => {
    doc.scopes.acr_values = { 'mcp:admin': ['mfa'] };
  });
  assert.deepEqual(call(mint({ scope: 'mcp:admin', acr: 'pwd' }), {}, mfa), {
    ...refused, reason: 'deny_step_up', acrValues: ['mfa'],
  });
  assert.equal(call(mint({ scope: 'mcp:admin', acr: 'mfa' }), {}, mfa).allowed, true);

  // A capture that cannot form a scope, a call without its name, a URL no route matches.
  const token = vectorTokens['mcp:tools'];
  assert.deepEqual(policy.mcpScopeRequest({ url: URL_MCP, token, method: 'resources/read', uri: 'demo://docs/a:b' }, NOW), {
    ...refused, reason: 'deny_bad_parameter',
  });
  assert.deepEqual(policy.mcpScopeRequest({ url: URL_MCP, token, method: 'tools/call' }, NOW), { ...refused, reason: 'deny_bad_body' });
  assert.deepEqual(call(token, { url: 'http://127.0.0.1:8080/elsewhere' }), { ...refused, reason: 'deny_no_route' });
  // Beside the MCP endpoint, the body means nothing: the route's own rule decides.
  assert.deepEqual(call(token, { url: 'http://127.0.0.1:8080/api/x' }), {
    allowed: false, required: ['api'], missing: ['api'], scope: 'mcp:tools api',
  });
});

test('mcpAccess and mcpScopeRequest: argument errors', () => {
  const token = vectorTokens['mcp:tools'];
  throwsCode(() => policy.mcpAccess(null), 'invalid_argument');
  throwsCode(() => policy.mcpAccess({ token, tools: ['echo'] }), 'invalid_argument');
  throwsCode(() => policy.mcpAccess({ url: 'mcp', token, tools: ['echo'] }), 'invalid_argument');
  throwsCode(() => policy.mcpAccess({ url: URL_MCP, token, tools: 'echo' }), 'invalid_argument');
  throwsCode(() => policy.mcpAccess({ url: URL_MCP, token, tools: [{ title: 'echo' }] }), 'invalid_argument');
  throwsCode(() => policy.mcpAccess({ url: URL_MCP, token, resources: [{ uriTemplate: 'demo://docs/{id}' }] }), 'invalid_argument');
  throwsCode(() => policy.mcpAccess({ url: URL_MCP, token: 42, tools: ['echo'] }), 'invalid_argument');
  throwsCode(() => policy.mcpAccess({ url: URL_MCP, token: { access_token: 7 } }), 'invalid_argument');
  throwsCode(() => policy.mcpAccess({ url: URL_MCP, token, tools: ['echo'] }, -1), 'invalid_argument');
  throwsCode(() => policy.mcpScopeRequest({ url: URL_MCP, token, name: 'echo' }), 'invalid_argument');
  throwsCode(() => policy.mcpScopeRequest({ url: URL_MCP, token, method: 'tools/call', name: 7 }), 'invalid_argument');
});

/**
 * A provider as MCP clients write them: a class with private fields, getters and optional
 * methods, recording where it was sent.
 */
class RecordingProvider {
  #tokens;
  redirects = [];
  saved = [];

  constructor(tokens) {
    this.#tokens = tokens;
  }

  get redirectUrl() {
    return 'http://localhost:3000/callback';
  }

  get clientMetadata() {
    return { client_name: 'test', redirect_uris: [this.redirectUrl], scope: 'mcp:tools' };
  }

  clientInformation() {
    return { client_id: 'mcp-client' };
  }

  tokens() {
    return this.#tokens;
  }

  saveTokens(tokens) {
    this.#tokens = tokens;
  }

  redirectToAuthorization(url) {
    this.redirects.push(url.href);
  }

  saveCodeVerifier(verifier) {
    this.saved.push(verifier);
  }

  codeVerifier() {
    return this.saved.at(-1);
  }
}

/** An authorization request as SDK 1.32's startAuthorization builds it, for `scope`. */
function sdkAuthorizationUrl(scope) {
  const url = new URL('https://idp.scopegate.test/authorize');
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', 'mcp-client');
  url.searchParams.set('code_challenge', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('redirect_uri', 'http://localhost:3000/callback');
  url.searchParams.set('state', 's-1');
  if (scope !== undefined) url.searchParams.set('scope', scope);
  url.searchParams.set('resource', URL_MCP);
  return url;
}

test('withHeldScopes: the authorization request asks for held plus requested, minimised', async () => {
  const inner = new RecordingProvider({ access_token: vectorTokens['mcp:tools'], token_type: 'Bearer', scope: 'mcp:tools openid' });
  const provider = withHeldScopes(inner, { policy });
  // SDK 1.32 after a 403 `scope="mcp:admin"`: the challenge's scope alone.
  await provider.redirectToAuthorization(sdkAuthorizationUrl('mcp:admin'));
  const expected = sdkAuthorizationUrl('mcp:tools openid mcp:admin');
  assert.deepEqual(inner.redirects, [expected.href]);
  assert.equal(new URL(inner.redirects[0]).searchParams.get('scope'), 'mcp:tools openid mcp:admin');

  // A requested parent scope replaces the held scopes it covers; a scope already held adds nothing.
  inner.redirects.length = 0;
  await provider.redirectToAuthorization(sdkAuthorizationUrl('mcp'));
  await provider.redirectToAuthorization(sdkAuthorizationUrl('mcp:tools'));
  assert.deepEqual(inner.redirects.map((u) => new URL(u).searchParams.get('scope')), ['openid mcp', 'mcp:tools openid']);

  // The access token's scopes count when the token response has no `scope` (RFC 6749 5.1)...
  const jwtOnly = new RecordingProvider({ access_token: vectorTokens['doc-8 mcp:resources'], token_type: 'Bearer' });
  await withHeldScopes(jwtOnly).redirectToAuthorization(sdkAuthorizationUrl('doc-7'));
  assert.equal(new URL(jwtOnly.redirects[0]).searchParams.get('scope'), 'doc-8 mcp:resources doc-7');
  // ...and the token response's when the access token is opaque.
  const opaque = new RecordingProvider({ access_token: 'opaque-123', token_type: 'Bearer', scope: 'mcp:tools' });
  await withHeldScopes(opaque, { policy }).redirectToAuthorization(sdkAuthorizationUrl('mcp:admin'));
  assert.equal(new URL(opaque.redirects[0]).searchParams.get('scope'), 'mcp:tools mcp:admin');

  // Nothing held (the first sign-in): the SDK's request as it was.
  const fresh = new RecordingProvider(undefined);
  await withHeldScopes(fresh, { policy }).redirectToAuthorization(sdkAuthorizationUrl('mcp:tools mcp:admin'));
  await withHeldScopes(fresh, { policy }).redirectToAuthorization(sdkAuthorizationUrl(undefined));
  assert.deepEqual(fresh.redirects, [sdkAuthorizationUrl('mcp:tools mcp:admin').href, sdkAuthorizationUrl(undefined).href]);
  // No scope requested (no challenge scope, no scopes_supported): what is held is kept.
  const keeps = new RecordingProvider({ access_token: 'opaque', token_type: 'Bearer', scope: 'mcp:tools' });
  await withHeldScopes(keeps).redirectToAuthorization(sdkAuthorizationUrl(undefined));
  assert.equal(new URL(keeps.redirects[0]).searchParams.get('scope'), 'mcp:tools');
});

test('withHeldScopes: rules, offline_access and the url option', async () => {
  // The policy's rules by default; other rules when given.
  const slash = new RecordingProvider({ access_token: 'opaque', token_type: 'Bearer', scope: 'files/read' });
  await withHeldScopes(slash, { rules: new ScopeRules({ separator: '/' }) }).redirectToAuthorization(sdkAuthorizationUrl('files'));
  await withHeldScopes(slash, { rules: { separator: ':' } }).redirectToAuthorization(sdkAuthorizationUrl('files'));
  assert.deepEqual(slash.redirects.map((u) => new URL(u).searchParams.get('scope')), ['files', 'files/read files']);

  // Like the SDK, a request with offline_access asks for consent.
  const offline = new RecordingProvider({ access_token: 'opaque', token_type: 'Bearer', scope: 'offline_access mcp:tools' });
  await withHeldScopes(offline).redirectToAuthorization(sdkAuthorizationUrl('mcp:admin'));
  const url = new URL(offline.redirects[0]);
  assert.equal(url.searchParams.get('scope'), 'offline_access mcp:tools mcp:admin');
  assert.deepEqual(url.searchParams.getAll('prompt'), ['consent']);

  // With `url`, a token the gateway there refuses as not its own holds nothing; an expired one still does.
  const foreign = new RecordingProvider({ access_token: mint({ aud: 'https://elsewhere.example', scope: 'other:thing' }), token_type: 'Bearer' });
  await withHeldScopes(foreign, { policy, url: URL_MCP }).redirectToAuthorization(sdkAuthorizationUrl('mcp:admin'));
  await withHeldScopes(foreign, { policy }).redirectToAuthorization(sdkAuthorizationUrl('mcp:admin'));
  assert.deepEqual(foreign.redirects.map((u) => new URL(u).searchParams.get('scope')), ['mcp:admin', 'other:thing mcp:admin']);
  const expired = new RecordingProvider({ access_token: vectorTokens['mcp:tools expired'], token_type: 'Bearer' });
  await withHeldScopes(expired, { policy, url: new URL(URL_MCP) }).redirectToAuthorization(sdkAuthorizationUrl('mcp:admin'));
  assert.equal(new URL(expired.redirects[0]).searchParams.get('scope'), 'mcp:tools mcp:admin');
});

test('withHeldScopes: everything else is the wrapped provider\'s', async () => {
  const tokens = { access_token: vectorTokens['mcp:tools'], token_type: 'Bearer' };
  const inner = new RecordingProvider(tokens);
  const provider = withHeldScopes(inner, { policy });
  assert.ok(provider instanceof RecordingProvider);
  assert.equal(provider.redirectUrl, 'http://localhost:3000/callback');
  assert.deepEqual(provider.clientMetadata.redirect_uris, ['http://localhost:3000/callback']);
  assert.deepEqual(await provider.tokens(), tokens); // a method reading a private field
  assert.deepEqual(provider.clientInformation(), { client_id: 'mcp-client' });
  // Optional methods stay absent, as the SDK tests them (`provider.state ? ... : undefined`).
  assert.equal(provider.state, undefined);
  assert.equal('saveClientInformation' in provider, false);
  assert.equal(provider.saveDiscoveryState?.({}), undefined);
  assert.equal('redirectToAuthorization' in provider, true);
  await provider.saveCodeVerifier('v-1');
  assert.equal(provider.codeVerifier(), 'v-1');
  provider.saveTokens({ access_token: 'opaque', token_type: 'Bearer', scope: 'mcp:prompts' });
  await provider.redirectToAuthorization(sdkAuthorizationUrl('mcp:admin'));
  assert.equal(new URL(inner.redirects[0]).searchParams.get('scope'), 'mcp:prompts mcp:admin');
  provider.extra = 1;
  assert.equal(inner.extra, 1);
  assert.ok(Object.keys(provider).includes('redirects'));

  // A frozen object literal with async methods and an optional one.
  const redirects = [];
  const literal = Object.freeze({
    redirectUrl: 'http://localhost/cb',
    clientMetadata: { redirect_uris: ['http://localhost/cb'] },
    state: () => 'st',
    clientInformation: async () => ({ client_id: 'c' }),
    tokens: async () => ({ access_token: 'opaque', token_type: 'Bearer', scope: 'mcp:tools' }),
    saveTokens: async () => {},
    redirectToAuthorization: async (url) => {
      redirects.push(url.searchParams.get('scope'));
    },
    saveCodeVerifier: async () => {},
    codeVerifier: async () => 'v',
  });
  const wrapped = withHeldScopes(literal);
  assert.equal(wrapped.redirectUrl, 'http://localhost/cb');
  assert.equal(wrapped.state(), 'st');
  assert.deepEqual({ ...wrapped }.clientMetadata, literal.clientMetadata);
  await wrapped.redirectToAuthorization(sdkAuthorizationUrl('mcp:admin'));
  assert.deepEqual(redirects, ['mcp:tools mcp:admin']);

  throwsCode(() => withHeldScopes(null), 'invalid_argument');
  throwsCode(() => withHeldScopes({ tokens() {} }), 'invalid_argument');
  throwsCode(() => withHeldScopes(inner, { policy: {} }), 'invalid_argument');
  throwsCode(() => withHeldScopes(inner, { url: URL_MCP }), 'invalid_argument');
  // A challenge scope that is no scope token is refused rather than asked for.
  await rejectsCode(provider.redirectToAuthorization(sdkAuthorizationUrl('mcp:admin "x"')), 'invalid_scope');
});

// --- With the SDK itself -------------------------------------------------------------

const sdkDir = join(root, 'web/node_modules/@modelcontextprotocol/sdk/dist/esm');

/**
 * A fetch for the SDK's transport: the MCP server and its metadata answer as the gateway
 * decides (the core's answer is the response, and an allowed call gets an empty result);
 * the authorization server serves only its metadata.
 */
function gatewayFetch(p, requests) {
  return async (input, init = {}) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const body = request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.text();
    requests.push({ method: request.method, url: url.href, authorization: request.headers.get('authorization'), body });
    if (url.origin === ISS) {
      if (url.pathname === '/token') {
        // A refresh gives the same scopes (RFC 6749 section 6 cannot widen them).
        return Response.json({ access_token: vectorTokens['mcp:tools'], token_type: 'Bearer', scope: 'mcp:tools', refresh_token: 'r-2' });
      }
      if (url.pathname !== '/.well-known/oauth-authorization-server') return new Response('not found', { status: 404 });
      return Response.json({
        issuer: ISS,
        authorization_endpoint: `${ISS}/authorize`,
        token_endpoint: `${ISS}/token`,
        response_types_supported: ['code'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    const authorization = request.headers.get('authorization');
    const answer = p.checkRequest({ method: request.method, url: url.href, authorization: authorization ? [authorization] : [], body }, NOW);
    if (answer.code === 'serve_metadata') return new Response(answer.body, { headers: { 'content-type': 'application/json' } });
    if (!answer.allowed) {
      return new Response(answer.body, {
        status: answer.status,
        headers: { 'content-type': 'application/json', 'www-authenticate': answer.challenge },
      });
    }
    const message = body ? JSON.parse(body) : {};
    return Response.json({ jsonrpc: '2.0', id: message.id ?? null, result: {} });
  };
}

async function sdk() {
  assert.ok(existsSync(sdkDir), `${sdkDir} is missing: run ./scripts/setup-web (npm ci in web/)`);
  const { StreamableHTTPClientTransport, StreamableHTTPError } = await import(pathToFileURL(join(sdkDir, 'client/streamableHttp.js')).href);
  const { UnauthorizedError } = await import(pathToFileURL(join(sdkDir, 'client/auth.js')).href);
  return { StreamableHTTPClientTransport, StreamableHTTPError, UnauthorizedError };
}

/** SDK 1.32 steps up after a 403 by asking for the challenge's scope alone; wrapped, for held plus that. */
async function stepUpWithSdk(wrap) {
  const { StreamableHTTPClientTransport, UnauthorizedError } = await sdk();
  const inner = new RecordingProvider({ access_token: vectorTokens['mcp:tools'], token_type: 'Bearer', scope: 'mcp:tools' });
  const requests = [];
  const transport = new StreamableHTTPClientTransport(new URL(URL_MCP), {
    authProvider: wrap(inner),
    fetch: gatewayFetch(policy, requests),
  });
  await transport.start();
  // echo is allowed with mcp:tools; get-env needs mcp:admin.
  await transport.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: {} } });
  let caught;
  try {
    await transport.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get-env', arguments: {} } });
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof UnauthorizedError, `expected the SDK's UnauthorizedError (a redirect), got ${caught}`);
  await transport.close();
  assert.equal(inner.redirects.length, 1);
  const url = new URL(inner.redirects[0]);
  assert.equal(url.origin + url.pathname, `${ISS}/authorize`);
  assert.equal(url.searchParams.get('resource'), URL_MCP);
  assert.equal(url.searchParams.get('client_id'), 'mcp-client');
  assert.equal(inner.saved.length, 1);
  const posted = requests.filter((r) => r.method === 'POST' && r.url === URL_MCP);
  assert.deepEqual(posted.map((r) => JSON.parse(r.body).params.name), ['echo', 'get-env']);
  return url.searchParams.get('scope');
}

test('the SDK\'s StreamableHTTPClientTransport alone replaces the held scope by the challenge\'s', async () => {
  assert.equal(await stepUpWithSdk((provider) => provider), 'mcp:admin');
});

test('the SDK\'s StreamableHTTPClientTransport with withHeldScopes keeps it', async () => {
  assert.equal(await stepUpWithSdk((provider) => withHeldScopes(provider, { policy, url: URL_MCP })), 'mcp:tools mcp:admin');
  // What mcpScopeRequest says to ask for, before any request.
  const tokens = { access_token: vectorTokens['mcp:tools'], token_type: 'Bearer', scope: 'mcp:tools' };
  assert.equal(policy.mcpScopeRequest({ url: URL_MCP, token: tokens, method: 'tools/call', name: 'get-env' }, NOW).scope, 'mcp:tools mcp:admin');
});

test('with a refresh token, SDK 1.32 refreshes instead of redirecting, and the call fails (documented limitation)', async () => {
  const { StreamableHTTPClientTransport, StreamableHTTPError } = await sdk();
  const tokens = { access_token: vectorTokens['mcp:tools'], token_type: 'Bearer', scope: 'mcp:tools', refresh_token: 'r-1', issuer: ISS };
  const inner = new RecordingProvider(tokens);
  const requests = [];
  const transport = new StreamableHTTPClientTransport(new URL(URL_MCP), {
    authProvider: withHeldScopes(inner, { policy }),
    fetch: gatewayFetch(policy, requests),
  });
  await transport.start();
  let caught;
  try {
    await transport.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get-env' } });
  } catch (err) {
    caught = err;
  }
  await transport.close();
  assert.ok(caught instanceof StreamableHTTPError, `expected StreamableHTTPError, got ${caught}`);
  assert.equal(caught.code, 403);
  assert.match(caught.message, /after trying upscoping/);
  assert.deepEqual(inner.redirects, []);
  assert.ok(requests.some((r) => r.url === `${ISS}/token` && new URLSearchParams(r.body).get('grant_type') === 'refresh_token'));
});
