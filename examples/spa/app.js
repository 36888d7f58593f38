// The demo SPA: signs in with authorization code + PKCE for read scopes only, pre-checks
// every action against the gateway's own policy with the `scopegate` package, and asks the
// IdP for a missing scope only when an action needs it (a progressive scope request).
import {
  init,
  Policy,
  decodeToken,
  scopesOf,
  parseChallenges,
  createPkce,
  authorizationUrl,
  assertScopesGranted,
  ScopesNotGrantedError,
} from 'scopegate';

/** What the app can do; the policy decides what each needs. */
const ACTIONS = [
  { id: 'list', label: 'List resources', method: 'GET', path: '/api/resources' },
  { id: 'create', label: 'Create a resource', method: 'POST', path: '/api/resources', body: { name: 'new resource' } },
  { id: 'items', label: "Read order 42's items", method: 'GET', path: '/api/orders/42/items' },
  { id: 'stock', label: 'Update the stock of sku-7', method: 'PUT', path: '/api/inventory/sku-7', body: { stock: 12 } },
];
/** Sign-in asks for read scopes only; writes are asked for when needed. */
const SIGN_IN_SCOPES = 'openid resource:read order';
const TOKENS = 'scopegate-demo:tokens';
const PENDING = 'scopegate-demo:pending';

const $ = (id) => document.getElementById(id);
const show = (id, visible) => { $(id).hidden = !visible; };

const LOG = 'scopegate-demo:log';

/** The story so far; kept in sessionStorage, as the redirects to the IdP reload the app. */
function log(text) {
  const entries = [...JSON.parse(sessionStorage.getItem(LOG) ?? '[]'), text].slice(-40);
  sessionStorage.setItem(LOG, JSON.stringify(entries));
  showLog();
}

function showLog() {
  const entries = JSON.parse(sessionStorage.getItem(LOG) ?? '[]');
  $('log').replaceChildren(...entries.map((text) => {
    const item = document.createElement('li');
    item.textContent = text;
    return item;
  }));
}

function randomState() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const tokens = () => JSON.parse(sessionStorage.getItem(TOKENS) ?? 'null');

async function main() {
  showLog();
  await init();
  const config = await (await fetch('/config.json')).json();
  const policy = Policy.fromJson(await (await fetch('/policy.json')).text());
  const discovery = await (await fetch(`${config.issuer}/.well-known/openid-configuration`)).json();
  const app = { config, policy, discovery };

  $('sign-in').addEventListener('click', () => authorize(app, SIGN_IN_SCOPES, null, { prompt: 'login' }));
  $('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(TOKENS);
    log('signed out (this app only; the IdP asks who you are at the next sign-in)');
    render(app);
  });

  const params = new URLSearchParams(location.search);
  if (params.has('code') || params.has('error')) await completeAuthorization(app, params);
  render(app);
  document.body.dataset.ready = 'true';
}

/** Sends the browser to the IdP for `scopes`; `action` runs when it comes back. */
async function authorize(app, scopes, action, extraParams = {}, add = []) {
  const pkce = await createPkce();
  const state = randomState();
  sessionStorage.setItem(PENDING, JSON.stringify({ state, codeVerifier: pkce.codeVerifier, action, add }));
  location.assign(authorizationUrl({
    authorizationEndpoint: app.discovery.authorization_endpoint,
    clientId: app.config.clientId,
    redirectUri: app.config.redirectUri,
    scopes,
    state,
    codeChallenge: pkce.codeChallenge,
    resource: app.config.api,
    extraParams,
  }));
}

/** The redirect back from the IdP: check it, redeem the code, then run the pending action. */
async function completeAuthorization(app, params) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? 'null');
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, '', '/');
  if (!pending || params.get('state') !== pending.state) {
    log('ignored an authorization response this app did not ask for (state mismatch)');
    return;
  }
  // RFC 9207: the response must come from the IdP the request went to.
  if (params.get('iss') !== app.discovery.issuer) {
    log(`refused an authorization response from ${params.get('iss')}`);
    return;
  }
  if (params.has('error')) {
    log(`the IdP refused: ${params.get('error')} ${params.get('error_description') ?? ''}`);
    return;
  }
  const response = await fetch(app.discovery.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: app.config.redirectUri,
      client_id: app.config.clientId,
      code_verifier: pending.codeVerifier,
      resource: app.config.api,
    }),
  });
  const answer = await response.json();
  if (!response.ok) {
    log(`the token request failed: ${answer.error} ${answer.error_description ?? ''}`);
    return;
  }
  sessionStorage.setItem(TOKENS, JSON.stringify({ access: answer.access_token, id: answer.id_token }));
  const user = decodeToken(answer.id_token).claims;
  log(`got an access token for ${user.sub} with scope "${answer.scope}"`);

  const action = ACTIONS.find((a) => a.id === pending.action);
  if (!action) return;
  try {
    assertScopesGranted(pending.add, answer.access_token, app.policy);
    log(`the IdP granted ${pending.add.join(' ')}; sending ${action.method} ${action.path} again`);
    await run(app, action);
  } catch (err) {
    if (!(err instanceof ScopesNotGrantedError)) throw err;
    log(`the IdP did not grant ${err.notGranted.join(' ')}; sending ${action.method} ${action.path} anyway to show the gateway's answer`);
    await run(app, action, err.notGranted);
  }
}

function render(app) {
  const current = tokens();
  show('sign-in', !current);
  show('sign-out', !!current);
  show('token-panel', !!current);
  if (current) {
    const user = decodeToken(current.id).claims;
    const claims = decodeToken(current.access).claims;
    $('user').textContent = `Signed in as ${user.name ?? user.sub} (${user.sub})`;
    $('scopes').textContent = scopesOf(current.access, app.policy).join(' ') || '(none)';
    $('issuer').textContent = claims.iss;
    $('expires').textContent = new Date(claims.exp * 1000).toLocaleTimeString();
    $('roles').textContent = (user.roles ?? []).join(', ') || 'none';
  } else {
    $('user').textContent = 'Not signed in.';
  }

  const rows = ACTIONS.map((action) => {
    const check = app.policy.check(action.method, app.config.api + action.path, current?.access ?? null);
    const row = document.createElement('tr');
    row.dataset.action = action.id;
    const verdict = document.createElement('td');
    verdict.className = 'verdict';
    const button = document.createElement('button');
    if (check.allowed) {
      verdict.classList.add('allowed');
      verdict.textContent = 'allowed';
      button.textContent = 'Run';
      button.addEventListener('click', () => run(app, action));
    } else if (check.error === 'insufficient_scope' && check.missing.length) {
      verdict.classList.add('missing');
      verdict.textContent = `not allowed: needs ${check.missing.join(' ')}`;
      button.textContent = `Ask for ${check.missing.join(' ')}`;
      button.addEventListener('click', () => {
        const held = scopesOf(current.access, app.policy);
        const next = app.policy.nextScopeRequest(held, check.missing);
        log(`${action.method} ${action.path} needs ${check.missing.join(' ')}; asking the IdP for "${next.add.join(' ')}" only now`);
        authorize(app, `openid ${next.scope}`, action.id, {}, next.add);
      });
    } else {
      verdict.classList.add('denied');
      verdict.textContent = current ? `${check.status} ${check.tokenError ?? check.error}` : 'sign in first';
      button.textContent = 'Sign in';
      button.addEventListener('click', () => authorize(app, SIGN_IN_SCOPES, null, { prompt: 'login' }));
    }
    const cells = [action.label, `${action.method} ${action.path}`].map((text) => {
      const cell = document.createElement('td');
      cell.textContent = text;
      return cell;
    });
    cells[1].innerHTML = `<code>${cells[1].textContent}</code>`;
    const buttonCell = document.createElement('td');
    buttonCell.append(button);
    row.append(...cells, verdict, buttonCell);
    return row;
  });
  $('actions').tBodies[0].replaceChildren(...rows);
}

/** Sends the action through the gateway and shows its answer. */
async function run(app, action, refusedByIdp = []) {
  const current = tokens();
  const headers = { authorization: `Bearer ${current.access}` };
  if (action.body) headers['content-type'] = 'application/json';
  const response = await fetch(app.config.api + action.path, {
    method: action.method,
    headers,
    body: action.body ? JSON.stringify(action.body) : undefined,
  });
  const body = await response.text();
  const challenge = response.headers.get('www-authenticate');
  log(`${action.method} ${action.path} -> ${response.status}`);

  show('answer', true);
  $('answer-request').textContent = `${action.method} ${app.config.api}${action.path}`;
  $('answer-status').textContent = `${response.status} ${response.statusText}`;
  $('answer-status').className = `status-${String(response.status)[0]}`;
  show('answer-challenge-line', !!challenge);
  $('answer-challenge').textContent = challenge ?? '';
  try {
    $('answer-body').textContent = JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    $('answer-body').textContent = body;
  }
  const explanation = challenge ? explain(app, challenge, current, refusedByIdp) : null;
  show('explanation', !!explanation);
  $('explanation').innerHTML = explanation ?? '';
  render(app);
}

/** Why the gateway refused, from its challenge, the token, and what the IdP said. */
function explain(app, wwwAuthenticate, current, refusedByIdp) {
  const bearer = parseChallenges(wwwAuthenticate).find((c) => c.scheme.toLowerCase() === 'bearer');
  if (!bearer) return null;
  const esc = (text) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  const code = (scopes) => scopes.map((s) => `<code>${esc(s)}</code>`).join(' ');
  const error = bearer.params.error ?? 'unauthorized';
  if (error !== 'insufficient_scope') {
    return `<p>The gateway refused the token (<code>${esc(error)}</code>${bearer.params.error_description ? `: ${esc(bearer.params.error_description)}` : ''}). Sign in again.</p>`;
  }
  // The challenge's scope is everything the request needs; what is missing is what the
  // token's scopes do not cover.
  const required = (bearer.params.scope ?? '').split(' ').filter(Boolean);
  const held = scopesOf(current.access, app.policy);
  const needed = app.policy.nextScopeRequest(held, required).add;
  const roles = decodeToken(current.id).claims.roles ?? [];
  const lines = [
    `<p><strong>Missing scope: ${code(needed)}.</strong> The gateway answered 403 <code>insufficient_scope</code>: this request needs ${code(needed)}, and your token holds ${held.length ? code(held) : 'no scopes'}.</p>`,
  ];
  if (refusedByIdp.length) {
    lines.push(`<p>This app asked the IdP for ${code(refusedByIdp)} and the IdP left it out of the token: your account's roles (${roles.length ? code(roles) : 'none'}) do not allow it. Signing in again will not help; an administrator has to give you a role that allows ${code(refusedByIdp)}.</p>`);
  } else {
    lines.push(`<p>The app can ask the IdP for ${code(needed)}; use the action's button above.</p>`);
  }
  return lines.join('');
}

main().catch((err) => {
  log(`error: ${err.message}`);
  document.body.dataset.ready = 'error';
});
