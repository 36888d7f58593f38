// The demo's OpenID provider: npm's oidc-provider on 127.0.0.1, configured the way the seed
// documents describe their IdPs (WSO2's "allowed roles" per scope, Auth0's rule that
// restricts the granted scopes to the user's roles):
//
// - one API, identified by its RFC 8707 resource indicator (`--audience`), which gets JWT
//   access tokens (`typ: at+jwt`, ES256) carrying the granted scopes in `scope`;
// - one public client, the SPA (`scopegate-spa`): authorization code + PKCE S256, CORS from
//   the SPA's origin only;
// - two users with roles, and a role -> allowed scopes rule: a scope the user's roles do not
//   allow is refused at consent, silently, as real IdPs do: the token comes back without it;
// - with `--mcp-resource URL`, a second resource indicator: an MCP server behind the gateway
//   (its audience is that URL, its scopes `mcp:tools` and `mcp:admin`), and two public
//   native clients for MCP clients (`scopegate-mcp-sdk`, `scopegate-mcp-precheck`,
//   `scopegate-mcp-v2`, `scopegate-mcp-python`; loopback redirect, RFC 8252; no Client ID
//   Metadata Documents: the SDKs take only https client_id URLs). These are third-party apps: each authorization request shows a
//   consent page where the user ticks the requested scopes the role rule allows, and may
//   approve fewer (the "minimal" grant of step-up authorization); every authorization
//   request of theirs is logged (`idp: authorization request ...`).
//
// - with `--opaque-resource URL --client-secret S`, a resource whose access tokens are opaque
//   (RFC 7662 introspection at /token/introspection), client credentials for two
//   confidential clients (`scopegate-service` gets tokens, `scopegate-gateway` introspects
//   them; both with secret S, client_secret_basic), revocation at /token/revocation, and
//   DPoP (RFC 9449): a token request with a DPoP proof gets a token bound to its key, JWT
//   or opaque. With `--gateway-jwk JWK` too, a third, `scopegate-gateway-jwt`, authenticates
//   with private_key_jwt (RFC 7523) by that public Ed25519 key and gets its introspection
//   answers as signed JWTs (RFC 9701); the option may be repeated with a P-256 or an RSA key,
//   for clients `scopegate-gateway-jwt-es256` and `scopegate-gateway-jwt-rs256` (ES256, RS256).
//
// Usage: node idp.mjs --port 9000 --audience http://127.0.0.1:8080 --spa http://127.0.0.1:5173
//        [--mcp-resource http://127.0.0.1:8080/mcp]
//        [--opaque-resource http://127.0.0.1:8080/opaque --client-secret S]
// The signing keys are made at start and published at /jwks: every run has new keys, which
// the gateway fetches from there (its `jwks_uri`).
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '9000' },
    audience: { type: 'string', default: 'http://127.0.0.1:8080' },
    spa: { type: 'string', default: 'http://127.0.0.1:5173' },
    'mcp-resource': { type: 'string' },
    'opaque-resource': { type: 'string' },
    'client-secret': { type: 'string' },
    'gateway-jwk': { type: 'string', multiple: true },
  },
});
const port = Number(args.port);
const issuer = `http://127.0.0.1:${port}`;
const audience = args.audience;
const spaOrigin = new URL(args.spa).origin;
const mcpResource = args['mcp-resource'];
const opaqueResource = args['opaque-resource'];
if (opaqueResource && !args['client-secret']) throw new Error('--opaque-resource needs --client-secret');

/** The API's scopes, as the gateway's policy (examples/policy.json) names them. */
const API_SCOPES = ['resource:read', 'resource:write', 'order', 'order:item', 'inventory.write'];

/**
 * The role -> allowed scopes rule. Every signed-in user may get the read scopes; the write
 * scopes need a role. This is the IdP's side of the story; the gateway never sees roles
 * (the access token carries only the scopes this rule let through).
 */
const ALLOWED_SCOPES = {
  '*': ['resource:read', 'order', 'order:item'],
  'resource-admin': ['resource:write'],
  'inventory-manager': ['inventory.write'],
};

/** Demo users; the password of each is its name. */
export const USERS = {
  alice: { name: 'Alice', roles: ['resource-admin'] },
  bob: { name: 'Bob', roles: [] },
};

/**
 * The MCP server's scopes, as its policy's rules name them, and the same kind of rule: every
 * user may get `mcp:tools`, only alice's role `mcp:admin` (the tool `get-env`).
 */
const MCP_SCOPES = ['mcp:tools', 'mcp:admin'];
const MCP_ALLOWED_SCOPES = {
  '*': ['mcp:tools'],
  'resource-admin': ['mcp:admin'],
};

/** The resource servers by RFC 8707 resource indicator: the API, and the MCP server if any. */
const RESOURCES = new Map([[audience, { scopes: API_SCOPES, allowed: ALLOWED_SCOPES }]]);
if (mcpResource) RESOURCES.set(mcpResource, { scopes: MCP_SCOPES, allowed: MCP_ALLOWED_SCOPES });
if (opaqueResource) RESOURCES.set(opaqueResource, { scopes: API_SCOPES, allowed: ALLOWED_SCOPES, opaque: true });

/** The confidential clients of `--opaque-resource`: a service and the gateway. */
const CONFIDENTIAL_CLIENTS = opaqueResource
  ? ['scopegate-service', 'scopegate-gateway'].map((clientId) => ({
    client_id: clientId,
    client_secret: args['client-secret'],
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  }))
  : [];
// With `--gateway-jwk` (a public Ed25519, P-256 or RSA JWK), a gateway that authenticates
// with private_key_jwt (RFC 7523) instead of a secret: a client per key, by its algorithm.
const GATEWAY_JWT_CLIENTS = {
  OKP: ['scopegate-gateway-jwt', 'EdDSA'],
  EC: ['scopegate-gateway-jwt-es256', 'ES256'],
  RSA: ['scopegate-gateway-jwt-rs256', 'RS256'],
};
for (const text of opaqueResource ? args['gateway-jwk'] ?? [] : []) {
  const jwk = JSON.parse(text);
  const [clientId, alg] = GATEWAY_JWT_CLIENTS[jwk.kty] ?? [];
  if (!clientId) throw new Error(`--gateway-jwk: no client for kty ${jwk.kty}`);
  CONFIDENTIAL_CLIENTS.push({
    client_id: clientId,
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: alg,
    // Its introspection answers are JWTs (RFC 9701), signed with the access tokens' key.
    introspection_signed_response_alg: 'ES256',
    jwks: { keys: [jwk] },
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  });
}

/** The MCP clients: public native apps whose redirect is a loopback URL (any port). */
const MCP_CLIENTS = {
  'scopegate-mcp-sdk': 'an MCP client (the official SDK)',
  'scopegate-mcp-precheck': 'an MCP client that pre-checks with scopegate',
  'scopegate-mcp-v2': 'an MCP client (the official TypeScript SDK, v2)',
  'scopegate-mcp-python': 'an MCP client (the official Python SDK)',
};
const isMcpClient = (clientId) => Boolean(mcpResource) && Object.hasOwn(MCP_CLIENTS, clientId);

function allowedScopes(accountId, indicator = audience) {
  const roles = USERS[accountId]?.roles ?? [];
  const allowed = RESOURCES.get(indicator)?.allowed ?? {};
  return new Set(['*', ...roles].flatMap((role) => allowed[role] ?? []));
}

function signingKey(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${randomBytes(4).toString('hex')}` };
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'scopegate-spa',
      client_name: 'scopegate demo SPA',
      application_type: 'web',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [`${spaOrigin}/`],
    },
    ...Object.entries(mcpResource ? MCP_CLIENTS : {}).map(([clientId, name]) => ({
      client_id: clientId,
      client_name: name,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
    })),
    ...CONFIDENTIAL_CLIENTS,
  ],
  // ES256 for access tokens (see getResourceServerInfo), RS256 for ID tokens (the default).
  jwks: {
    keys: [
      signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
      signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
    ],
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  // The ID token carries the user's name and roles, for the SPA to show; access tokens do not.
  claims: { openid: ['sub', 'name', 'roles'] },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  clientBasedCORS: (_ctx, origin, client) =>
    client.clientAuthMethod === 'none' && client.redirectUris.some((uri) => new URL(uri).origin === origin),
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Session: 3600, Interaction: 600, Grant: 3600 },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resourceIndicator) => {
        const resource = RESOURCES.get(resourceIndicator);
        if (!resource) throw new errors.InvalidTarget();
        if (resource.opaque) {
          return { scope: resource.scopes.join(' '), audience: resourceIndicator, accessTokenFormat: 'opaque', accessTokenTTL: 600 };
        }
        return {
          scope: resource.scopes.join(' '),
          audience: resourceIndicator,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
    ...(opaqueResource && {
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      jwtIntrospection: { enabled: true },
      revocation: { enabled: true },
      dPoP: { enabled: true },
    }),
  },
  async findAccount(_ctx, id) {
    const user = USERS[id];
    if (!user) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, name: user.name, roles: user.roles }) };
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Sign-in error', `<p class="error">${escape(out.error)}: ${escape(out.error_description ?? '')}</p>`);
  },
});
// http://127.0.0.1 is the demo's whole world; oidc-provider would otherwise want TLS in
// front of it (X-Forwarded-Proto) before it sets its cookies.
provider.proxy = false;

const escape = (text) =>
  String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1d2330}
h1{font-size:1.3rem}label{display:block;margin:.6rem 0 .2rem}input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box}
button{font:inherit;margin-top:1rem;padding:.5rem 1.2rem;background:#2457c5;color:#fff;border:0;border-radius:4px;cursor:pointer}
.hint{background:#f2f4f8;padding:.6rem .8rem;border-radius:4px;font-size:.9rem}.error{color:#a31b1b}code{font-size:.9em}</style>
</head><body><h1>${escape(title)}</h1>${body}</body></html>`;
}

function loginPage(uid, details, error) {
  const users = Object.entries(USERS)
    .map(([id, user]) => `<li><code>${id}</code> / <code>${id}</code>: roles ${user.roles.length ? user.roles.map((r) => `<code>${r}</code>`).join(', ') : 'none'}</li>`)
    .join('');
  return page(
    'Sign in to the scopegate demo IdP',
    `<p><code>${escape(details.params.client_id)}</code> asks for <code>${escape(details.params.scope ?? '')}</code>.</p>
${error ? `<p class="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
<label for="username">User</label><input id="username" name="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button type="submit">Sign in</button></form>
<div class="hint"><p>Demo users (user / password):</p><ul>${users}</ul>
${isMcpClient(details.params.client_id)
    ? `<p>Every user may get <code>${MCP_ALLOWED_SCOPES['*'].join(' ')}</code>; <code>mcp:admin</code> needs the role <code>resource-admin</code>.</p></div>`
    : `<p>Every user may get <code>${ALLOWED_SCOPES['*'].join(' ')}</code>; <code>resource:write</code> needs the role <code>resource-admin</code>.</p></div>`}`,
  );
}

/**
 * What an MCP client's authorization request asks of each resource it names, by the role
 * rule: `refused` (the user's roles do not allow it), `held` (granted before) and `ask` (for
 * the user to approve or not).
 */
function mcpRequest(details, grant) {
  const { params, session } = details;
  const requested = new Set((params.scope ?? '').split(' ').filter(Boolean));
  return [params.resource ?? []].flat().filter((indicator) => RESOURCES.has(indicator)).map((indicator) => {
    const scopes = RESOURCES.get(indicator).scopes.filter((scope) => requested.has(scope));
    const allowed = allowedScopes(session.accountId, indicator);
    const held = new Set(grant.getResourceScope(indicator).split(' '));
    return {
      indicator,
      refused: scopes.filter((scope) => !allowed.has(scope)),
      held: scopes.filter((scope) => allowed.has(scope) && held.has(scope)),
      ask: scopes.filter((scope) => allowed.has(scope) && !held.has(scope)),
    };
  });
}

function consentPage(uid, details, requests) {
  const client = MCP_CLIENTS[details.params.client_id] ?? details.params.client_id;
  const sections = requests.map(({ indicator, refused, held, ask }) => `<fieldset><legend><code>${escape(indicator)}</code></legend>
${ask.map((scope) => `<label><input type="checkbox" name="scope" value="${escape(scope)}" checked> <code>${escape(scope)}</code></label>`).join('\n')}
${held.length ? `<p>Already granted: <code>${escape(held.join(' '))}</code>.</p>` : ''}
${refused.length ? `<p class="error">Not for your roles: <code>${escape(refused.join(' '))}</code>.</p>` : ''}</fieldset>`);
  return page(
    'Allow access?',
    `<p><code>${escape(details.params.client_id)}</code> (${escape(client)}) asks for <code>${escape(details.params.scope ?? '')}</code>. Untick what it should not have yet; it can ask again when it needs it.</p>
<form method="post" action="/interaction/${escape(uid)}/consent">${sections.join('')}
<button type="submit">Allow the ticked scopes</button></form>`,
  );
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10_000) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

/** Consent without a screen (a first-party app), restricted by the role rule. */
async function consent(details) {
  const { prompt, session } = details;
  const grant = await grantOf(details);
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    const allowed = allowedScopes(session.accountId, indicator);
    const granted = scopes.filter((scope) => allowed.has(scope));
    const refused = scopes.filter((scope) => !allowed.has(scope));
    if (granted.length) grant.addResourceScope(indicator, granted.join(' '));
    // Refused scopes are recorded as seen, so the next request for them gets a token
    // without them rather than another consent round.
    if (refused.length) {
      grant.rejectResourceScope(indicator, refused.join(' '));
      console.log(`idp: refused ${refused.join(' ')} to ${session.accountId} (roles: ${USERS[session.accountId]?.roles.join(', ') || 'none'})`);
    }
  }
  return { consent: { grantId: await grant.save() } };
}

/** The grant an interaction's consent adds to. */
async function grantOf(details) {
  const { params, session, grantId } = details;
  return grantId
    ? provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
}

/**
 * An MCP client's consent: the role rule first (refused scopes are rejected and logged, as
 * for the SPA), then what the user approved of the rest (`approved`: null when there was
 * nothing to ask). A scope the user did not approve is rejected for this grant, so that this
 * flow ends, and asked for again the next time the client asks (a native client's every
 * request comes to the consent page); approving it lifts that.
 */
async function mcpConsent(details, grant, requests, approved) {
  const { prompt, session, params } = details;
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  const user = session.accountId;
  for (const { indicator, refused, ask } of requests) {
    if (refused.length) {
      grant.rejectResourceScope(indicator, refused.join(' '));
      console.log(`idp: refused ${refused.join(' ')} to ${user} (roles: ${USERS[user]?.roles.join(', ') || 'none'})`);
    }
    const yes = ask.filter((scope) => approved?.includes(scope));
    const no = ask.filter((scope) => !yes.includes(scope));
    if (yes.length) {
      grant.addResourceScope(indicator, yes.join(' '));
      const rejected = grant.rejected?.resources?.[indicator];
      if (rejected) grant.rejected.resources[indicator] = rejected.split(' ').filter((scope) => !yes.includes(scope)).join(' ');
    }
    if (no.length) grant.rejectResourceScope(indicator, no.join(' '));
    if (ask.length) {
      console.log(`idp: ${user} approved ${yes.join(' ') || 'nothing'}${no.length ? `, declined ${no.join(' ')}` : ''} for ${params.client_id}`);
    }
  }
  return { consent: { grantId: await grant.save() } };
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new errors.InvalidRequest('interaction mismatch');
  const html = (status, body) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(body);
  };
  if (details.prompt.name === 'login') {
    if (req.method === 'GET' && !action) return html(200, loginPage(uid, details));
    if (req.method === 'POST' && action === 'login') {
      const form = await readForm(req);
      const username = form.get('username')?.trim().toLowerCase() ?? '';
      if (!USERS[username] || form.get('password') !== username) {
        return html(200, loginPage(uid, details, 'Unknown user or wrong password.'));
      }
      return provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
    }
  }
  if (details.prompt.name === 'consent' && isMcpClient(details.params.client_id)) {
    const grant = await grantOf(details);
    const requests = mcpRequest(details, grant);
    const asking = requests.some(({ ask }) => ask.length);
    if (req.method === 'GET' && !action && asking) return html(200, consentPage(uid, details, requests));
    if ((req.method === 'GET' && !action && !asking) || (req.method === 'POST' && action === 'consent')) {
      const approved = req.method === 'POST' ? (await readForm(req)).getAll('scope') : null;
      const result = await mcpConsent(details, grant, requests, approved);
      return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
    }
  } else if (details.prompt.name === 'consent' && req.method === 'GET' && !action) {
    return provider.interactionFinished(req, res, await consent(details), { mergeWithLastSubmission: true });
  }
  html(400, page('Sign-in error', '<p class="error">Unexpected step; start again from the app.</p>'));
}

const callback = provider.callback();
const server = createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/auth' && isMcpClient(url.searchParams.get('client_id'))) {
    const param = (name) => JSON.stringify(url.searchParams.get(name));
    console.log(`idp: authorization request from ${url.searchParams.get('client_id')}: scope ${param('scope')}, resource ${param('resource')}`);
  }
  const match = /^\/interaction\/([\w-]+)(?:\/(login|consent))?$/.exec(url.pathname);
  if (!match) return callback(req, res);
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (err) {
    if (!res.headersSent) {
      res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page('Sign-in error', `<p class="error">${escape(err.message)}</p><p>Start again from the app.</p>`));
    }
  }
});
server.listen(port, '127.0.0.1', () => {
  const mcp = mcpResource ? `; MCP resource ${mcpResource}, clients ${Object.keys(MCP_CLIENTS).join(', ')}` : '';
  const opaque = opaqueResource ? `; opaque resource ${opaqueResource}, introspection and DPoP` : '';
  console.log(`idp: ${issuer} ready (audience ${audience}, client scopegate-spa for ${spaOrigin}${mcp}${opaque})`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
