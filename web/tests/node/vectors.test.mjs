// Runs the shared vectors (tests/vectors/*.json) against the npm package, exactly as the
// Rust runners in tests/tests/ run them against the core: both must give the same answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  Policy, ScopeRules, parseChallenges, normalizePath, ScopegateError, authorizationUrl, withHeldScopes, scopedFetch,
} from 'scopegate';

const root = process.env.SCOPEGATE_ROOT;
assert.ok(root, 'SCOPEGATE_ROOT must name the repository (scripts/test-web sets it)');
const vectors = (name) => JSON.parse(readFileSync(join(root, 'tests/vectors', name), 'utf8'));

/** Calls `fn`; returns its error's `code` (and details) if it throws a ScopegateError. */
function outcome(fn) {
  try {
    return { ok: fn() };
  } catch (err) {
    assert.ok(err instanceof ScopegateError, `not a ScopegateError: ${err}`);
    assert.ok(err instanceof Error);
    return { err };
  }
}

test('scopes.json: coverage and progressive requests', () => {
  let ran = 0;
  for (const suite of vectors('scopes.json').suites) {
    const rules = new ScopeRules({
      separator: suite.rules.separator,
      writeSuffix: suite.rules.write_suffix,
      prefixes: suite.rules.prefixes,
    });
    for (const c of suite.covers) {
      assert.equal(rules.covers(c.granted, c.required), c.covers, JSON.stringify(c));
      ran++;
    }
    for (const c of suite.next_request) {
      const got = outcome(() => rules.nextRequest(c.held, c.missing));
      if (c.error !== undefined) {
        assert.equal(got.err?.code, 'invalid_scope', JSON.stringify(c));
        assert.equal(got.err.reason, c.error, JSON.stringify(c));
      } else {
        assert.deepEqual(got.ok, { add: c.add, scope: c.scope }, JSON.stringify(c));
      }
      ran++;
    }
  }
  assert.ok(ran >= 30, `only ${ran} scope vectors ran`);
});

test('paths.json: normalization', () => {
  const { cases } = vectors('paths.json');
  for (const c of cases) {
    const got = outcome(() => normalizePath(c.input));
    if (c.error !== undefined) {
      assert.equal(got.err?.code, 'invalid_path', JSON.stringify(c));
      assert.equal(got.err.reason, c.error, JSON.stringify(c));
    } else {
      assert.equal(got.ok, c.normalized, JSON.stringify(c));
    }
  }
  assert.ok(cases.length >= 25);
});

test('challenges.json: WWW-Authenticate parsing', () => {
  const { cases } = vectors('challenges.json');
  for (const c of cases) {
    const got = outcome(() => parseChallenges(c.header));
    if (c.error_at !== undefined) {
      assert.equal(got.err?.code, 'invalid_challenge', JSON.stringify(c));
      assert.equal(got.err.at, c.error_at, JSON.stringify(c));
    } else {
      const expected = c.challenges.map((ch) => ({ scheme: ch.scheme, token68: ch.token68 ?? null, paramList: ch.params }));
      const actual = got.ok.map(({ scheme, token68, paramList }) => ({ scheme, token68, paramList }));
      assert.deepEqual(actual, expected, JSON.stringify(c));
    }
  }
  assert.ok(cases.length >= 15);
});

/** The runner's JSON-pointer patch (tests/tests/vectors.rs `patched`). */
function patched(base, set) {
  const doc = structuredClone(base);
  for (const [pointer, value] of Object.entries(set)) {
    const parts = pointer.split('/').slice(1);
    const last = parts.pop();
    let target = doc;
    for (const part of parts) target = target[Array.isArray(target) ? Number(part) : part];
    if (Array.isArray(target)) {
      target[Number(last)] = value;
    } else if (value === null) {
      delete target[last];
    } else {
      target[last] = value;
    }
  }
  return doc;
}

test('policies.json: loading, with the JSON path of every error', () => {
  const file = vectors('policies.json');
  let serverOnly = 0;
  for (const c of file.cases) {
    const got = outcome(() => Policy.fromJson(JSON.stringify(patched(file.base, c.set))));
    if (c.server_only) {
      // The error is in a member only a gateway reads (keys, secrets, the introspection
      // endpoint and credentials, DPoP nonces): the package skips those unread.
      assert.ok(got.ok instanceof Policy, `${c.name}: ${got.err?.message}`);
      serverOnly++;
    } else if (c.ok !== undefined) {
      assert.ok(got.ok instanceof Policy, `${c.name}: ${got.err?.message}`);
    } else {
      assert.equal(got.err?.code, 'invalid_policy', c.name);
      assert.equal(got.err.path, c.path, c.name);
      assert.ok(got.err.message.includes(c.message_contains), `${c.name}: ${got.err.message}`);
    }
  }
  assert.ok(file.cases.length >= 35);
  assert.ok(serverOnly < file.cases.length / 4, `${serverOnly} server_only cases`);
});

function checkOf(policy, request, now) {
  return policy.checkRequest(
    {
      method: request.method,
      url: request.path,
      authorization: request.authorization ?? [],
      origin: request.origin,
      accessControlRequestMethod: request.access_control_request_method,
      body: request.body,
      mcpMethod: request.mcp_method,
      mcpName: request.mcp_name,
      mcpProtocolVersion: request.mcp_protocol_version,
    },
    now,
  );
}

// decisions.json holds the gateway's answers. `signature_only` cases are skipped here: their
// answer depends on verifying the signature, which the client never does; checks.json
// (next test) holds what `check` answers for them instead, the gateway's answer for the same
// claims well signed.
test('decisions.json: every expectation, through policy.checkRequest', () => {
  let ran = 0;
  let skipped = 0;
  let proofOnly = 0;
  for (const suite of vectors('decisions.json').suites) {
    const policy = Policy.fromJson(JSON.stringify(suite.policy));
    for (const c of suite.cases) {
      if (c.signature_only) {
        // A DPoP proof is checked by the gateway only: the client holds the key that signs it.
        if (suite.name.startsWith('dpop')) proofOnly++;
        else skipped++;
        continue;
      }
      const got = checkOf(policy, c.request, suite.now);
      const observed = {
        decision:
          got.code === 'serve_metadata'
            ? 'serve'
            : got.code === 'read_body'
              ? 'need_body'
              : got.allowed
                ? 'allow'
                : 'deny',
        code: got.code,
        status: got.status,
        token_error: got.tokenError,
        missing: got.missing,
        max_age: got.maxAge,
        www_authenticate: got.challenge,
        body: got.body,
        allowed_origin: got.allowedOrigin,
        headers: got.headers,
      };
      for (const [field, expected] of Object.entries(c.expect)) {
        assert.deepEqual(observed[field], expected, `[${suite.name}] ${c.name}: ${field}`);
      }
      ran++;
    }
  }
  assert.ok(ran >= 75, `only ${ran} decision vectors ran`);
  assert.ok(skipped >= 1 && skipped <= 10, `${skipped} signature_only cases`);
  assert.ok(proofOnly >= 20, `only ${proofOnly} DPoP proof cases`);
});

test('checks.json: policy.check gives the gateway\'s whole answer for every request', () => {
  const decisions = vectors('decisions.json');
  const checks = vectors('checks.json').cases;
  let ran = 0;
  for (const suite of decisions.suites) {
    const policy = Policy.fromJson(suite.policy);
    for (const c of suite.cases) {
      const expected = checks.find((e) => e.suite === suite.name && e.name === c.name);
      assert.ok(expected, `[${suite.name}] ${c.name} missing from checks.json`);
      assert.deepEqual(checkOf(policy, c.request, suite.now), expected.check, `[${suite.name}] ${c.name}`);
      // The same through check(method, url, jwt) when the request is just a bearer token.
      const auth = c.request.authorization ?? [];
      const bearer = auth.length === 1 && /^Bearer [^ ,]+$/.test(auth[0]) ? auth[0].slice(7) : null;
      const plain = c.request.origin === undefined && c.request.body === undefined && c.request.mcp_method === undefined &&
        c.request.mcp_protocol_version === undefined;
      if (plain && (auth.length === 0 || bearer !== null)) {
        const got = policy.check(c.request.method, c.request.path, bearer, new Date(suite.now * 1000));
        assert.deepEqual(got, expected.check, `[${suite.name}] ${c.name} through check()`);
      }
      if (expected.signature_only) {
        assert.notEqual(expected.check.code, expected.gateway_code);
      }
      ran++;
    }
  }
  assert.equal(ran, checks.length);
  assert.ok(ran >= 80);
});

// client.json: the core's client rules (scopegate_core::client), each through the public API
// that relies on it; tests/tests/vectors.rs runs the same cases against the core's functions.
const client = vectors('client.json');
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** The case's access token: minted from `claims` (signature bytes "sig"), or `access`. */
const accessOf = (c) => (c.claims !== undefined ? `${b64({ alg: 'EdDSA' })}.${b64(c.claims)}.c2ln` : c.access);

/** An authorization request through `authorizationUrl`, with `options` added. */
function authorize(options) {
  return authorizationUrl({
    authorizationEndpoint: 'https://idp.example/authorize',
    clientId: 'spa',
    redirectUri: 'https://app.example/callback',
    scopes: [],
    codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    ...options,
  });
}

/** Where `withHeldScopes(provider with tokens, options)` redirects an SDK request for `requested` (with `prompt`). */
async function redirected(tokens, options, requested, prompt) {
  let target;
  const provider = withHeldScopes({ tokens: async () => tokens, redirectToAuthorization: async (url) => { target = url; } }, options);
  const url = new URL('https://idp.example/authorize?response_type=code&client_id=mcp');
  if (requested.length > 0) url.searchParams.set('scope', requested.join(' '));
  if (prompt !== undefined) url.searchParams.set('prompt', prompt);
  await provider.redirectToAuthorization(url);
  return target;
}

test('client.json split: how a scope list written as text splits', () => {
  for (const c of client.split) {
    const invalid = c.scopes.find((s) => !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s));
    const got = outcome(() => new URL(authorize({ scopes: c.text })).searchParams.get('scope'));
    if (invalid === undefined) {
      assert.equal(got.ok, c.scopes.length > 0 ? c.scopes.join(' ') : null, JSON.stringify(c));
    } else {
      // The item that is not a scope is named as it was split.
      assert.ok(got.err?.message.startsWith(JSON.stringify(invalid)), `${JSON.stringify(c)}: ${got.err?.message}`);
    }
  }
  assert.ok(client.split.length >= 5);
});

test('client.json acr: which acr values an authorization request may carry', () => {
  for (const c of client.acr) {
    const got = outcome(() => new URL(authorize({ acrValues: [c.value] })).searchParams.get('acr_values'));
    if (c.valid) assert.equal(got.ok, c.value, JSON.stringify(c));
    else assert.equal(got.err?.code, 'invalid_argument', JSON.stringify(c));
  }
  assert.ok(client.acr.length >= 5);
});

test('client.json pkce: which code challenges an authorization request may carry', () => {
  for (const c of client.pkce) {
    const got = outcome(() => new URL(authorize({ codeChallenge: c.value })).searchParams.get('code_challenge'));
    if (c.valid) assert.equal(got.ok, c.value, JSON.stringify(c));
    else assert.equal(got.err?.code, 'invalid_argument', JSON.stringify(c));
  }
  assert.ok(client.pkce.length >= 5);
});

test('client.json widen: withHeldScopes keeps what is held, with consent for offline_access', async () => {
  for (const c of client.widen) {
    const rules = c.rules && { separator: c.rules.separator, writeSuffix: c.rules.write_suffix, prefixes: c.rules.prefixes };
    const target = await redirected({ scope: c.held.join(' ') }, { rules }, c.requested, c.prompt);
    const got = { scope: target.searchParams.get('scope'), prompt: target.searchParams.getAll('prompt') };
    // `expect.prompt` is the value set; null leaves the request's own (if any) as it was.
    const prompt = c.expect?.prompt ?? c.prompt;
    const expected = { scope: c.expect?.scope ?? null, prompt: prompt === undefined ? [] : [prompt] };
    assert.deepEqual(got, expected, JSON.stringify(c));
  }
  assert.ok(client.widen.length >= 5);
});

test('client.json held: the scopes held, at the policy\'s url or anywhere', async () => {
  const policy = Policy.fromJson(client.policy);
  for (const c of client.held) {
    const tokens = { access_token: accessOf(c), token_type: 'Bearer', scope: c.granted };
    const options = c.at_url ? { policy, url: client.url } : { policy };
    // An uncovered probe scope: the request is then what is held, then the probe.
    const target = await redirected(tokens, options, ['probe']);
    assert.equal(target.searchParams.get('scope'), [...c.held, 'probe'].join(' '), c.name);
  }
  assert.ok(client.held.length >= 5);
});

test('client.json mcp: one call\'s access, and which refusals a scope request fixes', () => {
  const policy = Policy.fromJson(client.policy);
  for (const c of client.mcp) {
    const token = { access_token: accessOf(c), token_type: 'Bearer', scope: c.granted };
    const got = policy.mcpScopeRequest({ url: client.url, token, method: c.method, ...c.params }, client.now);
    assert.deepEqual(got, c.expect, c.name);
  }
  assert.ok(client.mcp.length >= 5);
});

test('client.json denials: what scopedFetch does about a server\'s denial', async () => {
  const policy = Policy.fromJson(client.policy);
  for (const c of client.denials) {
    const headers = {};
    if (c.header !== undefined) headers['WWW-Authenticate'] = c.header;
    if (c.body !== undefined) headers['Content-Type'] = c.content_type ?? 'application/json';
    const response = new Response(c.body ?? null, { status: c.status, headers });
    let fix = 'none';
    try {
      const getToken = () => accessOf(c) ?? null;
      await scopedFetch('http://127.0.0.1:8080/public/x', {}, { policy, getToken, fetch: async () => response });
    } catch (err) {
      assert.ok(err instanceof ScopegateError, String(err));
      fix = { insufficient_scope: 'scopes', insufficient_user_authentication: 'sign_in' }[err.code] ?? `thrown ${err.code}`;
      if (fix === 'scopes') {
        assert.deepEqual({ missing: err.missing, scope_request: err.scopeRequest }, { missing: c.missing, scope_request: c.scope_request }, JSON.stringify(c));
      }
    }
    assert.equal(fix, c.fix, JSON.stringify(c));
  }
  assert.ok(client.denials.length >= 5);
});

test('client.json denial_body: which responses scopedFetch reads the body of', async () => {
  const policy = Policy.fromJson(client.policy);
  const body = JSON.stringify({ error: 'insufficient_scope', scope: 'a' });
  for (const c of client.denial_body) {
    let read = false;
    const headers = new Headers(c.content_type === null ? {} : { 'Content-Type': c.content_type });
    const response = {
      status: c.status, ok: c.status >= 200 && c.status < 300, headers,
      clone: () => ({ text: async () => { read = true; return body; } }),
    };
    await scopedFetch('http://127.0.0.1:8080/public/x', {}, { policy, getToken: () => null, fetch: async () => response })
      .catch((err) => assert.ok(err instanceof ScopegateError, String(err)));
    assert.equal(read, c.read, JSON.stringify(c));
  }
  assert.ok(client.denial_body.length >= 5);
});

test('client.json bearer: the Authorization header scopedFetch and check send for a token', async () => {
  const policy = Policy.fromJson(client.policy);
  for (const c of client.bearer) {
    let sent;
    const fetch = async (request) => { sent = request.headers.get('Authorization'); return new Response(null); };
    await scopedFetch('http://127.0.0.1:8080/public/x', {}, { policy, getToken: () => c.token, fetch });
    assert.equal(sent, c.header, JSON.stringify(c));
    const authorization = c.header === null ? [] : [c.header];
    assert.deepEqual(policy.check('POST', '/mcp', c.token, client.now), policy.checkRequest({ method: 'POST', url: '/mcp', authorization }, client.now));
  }
  assert.ok(client.bearer.length >= 3);
});

test('client.json authorize: what authorizationUrl sends, in order, or why it cannot', () => {
  for (const c of client.authorize) {
    const r = { ...client.authorize_base, ...c.request };
    const got = outcome(() =>
      authorizationUrl({
        authorizationEndpoint: r.authorization_endpoint,
        responseType: r.response_type,
        clientId: r.client_id,
        redirectUri: r.redirect_uri,
        scopes: r.scopes ?? [],
        state: r.state,
        codeChallenge: r.code_challenge,
        codeChallengeMethod: r.code_challenge_method,
        resource: r.resources,
        acrValues: r.acr_values,
        maxAge: r.max_age,
        extraParams: Object.fromEntries(r.extra ?? []),
      }),
    );
    if (c.error !== undefined) {
      assert.deepEqual([got.err?.code, got.err?.message], ['invalid_argument', c.error], c.name);
    } else {
      assert.deepEqual([...new URL(got.ok).searchParams], c.params, c.name);
    }
  }
  assert.ok(client.authorize.length >= 10);
});
