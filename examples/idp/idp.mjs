// The demo's OpenID provider: npm's oidc-provider on 127.0.0.1, configured the way the seed
// documents describe their IdPs (WSO2's "allowed roles" per scope, Auth0's rule that
// restricts the granted scopes to the user's roles):
//
// - one API, identified by its RFC 8707 resource indicator (`--audience`), which gets JWT
//   access tokens (`typ: at+jwt`, ES256) carrying the granted scopes in `scope`;
// - one public client, the SPA (`scopegate-spa`): authorization code + PKCE S256, CORS from
//   the SPA's origin only;
// - two users with roles, and a role -> allowed scopes rule: a scope the user's roles do not
//   allow is refused at consent, silently, as real IdPs do: the token comes back without it.
//
// Usage: node idp.mjs --port 9000 --audience http://127.0.0.1:8080 --spa http://127.0.0.1:5173
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
  },
});
const port = Number(args.port);
const issuer = `http://127.0.0.1:${port}`;
const audience = args.audience;
const spaOrigin = new URL(args.spa).origin;

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

function allowedScopes(accountId) {
  const roles = USERS[accountId]?.roles ?? [];
  return new Set(['*', ...roles].flatMap((role) => ALLOWED_SCOPES[role] ?? []));
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
        if (resourceIndicator !== audience) throw new errors.InvalidTarget();
        return {
          scope: API_SCOPES.join(' '),
          audience,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
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
<p>Every user may get <code>${ALLOWED_SCOPES['*'].join(' ')}</code>; <code>resource:write</code> needs the role <code>resource-admin</code>.</p></div>`,
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
  const { prompt, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const allowed = allowedScopes(session.accountId);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
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
  if (details.prompt.name === 'consent' && req.method === 'GET' && !action) {
    return provider.interactionFinished(req, res, await consent(details), { mergeWithLastSubmission: true });
  }
  html(400, page('Sign-in error', '<p class="error">Unexpected step; start again from the app.</p>'));
}

const callback = provider.callback();
const server = createServer(async (req, res) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login))?$/.exec(new URL(req.url, issuer).pathname);
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
  console.log(`idp: ${issuer} ready (audience ${audience}, client scopegate-spa for ${spaOrigin})`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
