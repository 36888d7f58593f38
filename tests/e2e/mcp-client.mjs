// An MCP client behind the scopegate filter, end to end: the official TypeScript SDK
// (`Client` + `StreamableHTTPClientTransport` with an `authProvider`) against the MCP
// reference server (`@modelcontextprotocol/server-everything`) behind Envoy, signing in at
// the demo IdP (`examples/idp/idp.mjs`). Everything is discovered from the gateway's 401
// (RFC 9728 metadata, then the IdP's metadata); the IdP's login and consent pages are driven
// with fetch in the provider's `redirectToAuthorization` (no browser): the user agent keeps
// the IdP's cookies and stops at the loopback redirect, whose code the SDK exchanges.
//
// Scenarios (`--scenario`):
// - `sdk`: connect (401, sign in), call `echo`, call `get-env` (403 insufficient_scope; the
//   SDK re-authorizes with the challenge's scope), call `get-env` again if the SDK did not
//   give up, then `echo` once more in the same session, and end the session (DELETE).
// - `precheck`: the same calls, pre-checked with the scopegate npm package against the
//   gateway's own policy (`--package`, `--policy`): the client asks for the scope a tool
//   needs before calling it, so it never meets a 403.
//
// The user (`--user alice`) ticks every scope the IdP's consent page offers, except those of
// `--decline-at-first` on the first page (the "minimal" grant at connect time; step-up
// asks for more later). Prints one line, `mcp-e2e: {…}`: every WWW-Authenticate challenge
// seen (recorded by the fetch passed to the transport), every authorization request's
// parameters (recorded in redirectToAuthorization), the consent pages, the tokens' scopes
// and each call's outcome. Exits 1 only when the scenario could not run to its end.
//
// Usage: node mcp-client.mjs --mcp http://127.0.0.1:8080/mcp --scenario sdk --user alice
//        [--decline-at-first mcp:admin] [--package target/npm/scopegate --policy policy.json]
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { REDIRECT_URI, User } from './idp-user.mjs';

const { values: args } = parseArgs({
  options: {
    mcp: { type: 'string', default: 'http://127.0.0.1:8080/mcp' },
    scenario: { type: 'string', default: 'sdk' },
    user: { type: 'string', default: 'alice' },
    'decline-at-first': { type: 'string', multiple: true, default: [] },
    package: { type: 'string' },
    policy: { type: 'string' },
  },
});
const MCP_URL = new URL(args.mcp);
const CLIENT_IDS = { sdk: 'scopegate-mcp-sdk', precheck: 'scopegate-mcp-precheck' };

const transcript = {
  scenario: args.scenario,
  user: args.user,
  client_id: CLIENT_IDS[args.scenario],
  // Every response with a WWW-Authenticate header, in order.
  challenges: [],
  // Every authorization request the SDK sent the user to.
  authorization_requests: [],
  // Every consent page the IdP showed, and what the user ticked.
  consents: [],
  // Every token the SDK saved: the token response's scope and the access token's claims.
  tokens: [],
  // Each tool call: its outcome, the step-ups it took.
  calls: [],
  // The discovery documents fetched, in order.
  discovery: [],
  sessions: [],
};

const backstop = setTimeout(() => {
  transcript.error = 'the scenario did not finish in 60 s';
  finish(1);
}, 60_000);

function finish(code) {
  clearTimeout(backstop);
  console.log(`mcp-e2e: ${JSON.stringify(transcript)}`);
  process.exit(code);
}

/** The JSON-RPC method (and tool name) of a request body, for the record. */
function rpcOf(body) {
  if (typeof body !== 'string') return undefined;
  try {
    const message = JSON.parse(body);
    if (Array.isArray(message) || typeof message.method !== 'string') return undefined;
    return message.params?.name ? `${message.method} ${message.params.name}` : message.method;
  } catch {
    return undefined;
  }
}

/** The fetch given to the transport (and so to the SDK's discovery and token requests). */
async function recordingFetch(input, init) {
  const response = await fetch(input, init);
  const url = String(input instanceof Request ? input.url : input);
  const challenge = response.headers.get('www-authenticate');
  if (challenge) {
    transcript.challenges.push({
      method: init?.method ?? 'GET',
      url,
      rpc: rpcOf(init?.body),
      status: response.status,
      www_authenticate: challenge,
      body: await response.clone().text(),
    });
  }
  if (new URL(url).pathname.startsWith('/.well-known/oauth-protected-resource')) {
    transcript.discovery.push({ url, status: response.status, document: await response.clone().json().catch(() => null) });
  } else if (new URL(url).pathname.includes('/.well-known/')) {
    transcript.discovery.push({ url, status: response.status });
  }
  return response;
}

/** The claims of a JWT, unverified (the gateway verifies; this is for the record). */
function claimsOf(jwt) {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
  } catch {
    return null;
  }
}

/**
 * An OAuthClientProvider of the SDK for a public client registered at the IdP: it keeps what
 * the SDK saves, and its redirectToAuthorization sends the user to the IdP and keeps the
 * code for finishAuth.
 */
class Provider {
  #tokens;
  #verifier;
  #state;
  #info;
  #discovery;

  constructor(clientId, user) {
    this.clientId = clientId;
    this.user = user;
    this.code = null;
  }

  get redirectUrl() {
    return REDIRECT_URI;
  }

  get clientMetadata() {
    return {
      client_name: 'scopegate e2e MCP client',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation() {
    return this.#info ?? { client_id: this.clientId };
  }

  saveClientInformation(info) {
    this.#info = info;
  }

  tokens() {
    return this.#tokens;
  }

  saveTokens(tokens) {
    this.#tokens = tokens;
    const claims = claimsOf(tokens.access_token);
    transcript.tokens.push({
      scope: tokens.scope ?? null,
      refresh_token: Boolean(tokens.refresh_token),
      // For `scopegate explain` in the test; a test IdP's short-lived token.
      access_token: tokens.access_token,
      claims: claims && { iss: claims.iss, aud: claims.aud, sub: claims.sub, scope: claims.scope ?? null },
    });
  }

  state() {
    this.#state = randomBytes(16).toString('base64url');
    return this.#state;
  }

  saveCodeVerifier(verifier) {
    this.#verifier = verifier;
  }

  codeVerifier() {
    return this.#verifier;
  }

  saveDiscoveryState(state) {
    this.#discovery = state;
  }

  discoveryState() {
    return this.#discovery;
  }

  async redirectToAuthorization(authorizationUrl) {
    const params = authorizationUrl.searchParams;
    transcript.authorization_requests.push({
      endpoint: `${authorizationUrl.origin}${authorizationUrl.pathname}`,
      client_id: params.get('client_id'),
      scope: params.get('scope'),
      resource: params.get('resource'),
      response_type: params.get('response_type'),
      code_challenge_method: params.get('code_challenge_method'),
      code_challenge: Boolean(params.get('code_challenge')),
      redirect_uri: params.get('redirect_uri'),
      state: Boolean(params.get('state')),
    });
    const answer = await this.user.authorize(authorizationUrl.href);
    if (answer.get('error')) throw new Error(`the IdP refused: ${answer.get('error')}: ${answer.get('error_description')}`);
    if (answer.get('state') !== this.#state) throw new Error('the IdP returned another state');
    this.code = answer.get('code');
  }

  /** The code of the last redirect, once. */
  takeCode() {
    const code = this.code;
    this.code = null;
    if (!code) throw new Error('the SDK asked for authorization but no code came back');
    return code;
  }
}

/**
 * Connects as the SDK's own example client does: the first attempt meets the 401 and sends
 * the user to the IdP (UnauthorizedError), finishAuth exchanges the code, and a new transport
 * connects with the token. `codes` is the Provider below whose redirectToAuthorization ran
 * (`provider` itself, or the Provider that `provider` wraps).
 */
async function connect(provider, codes = provider) {
  const open = () => {
    const transport = new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider, fetch: recordingFetch });
    const client = new Client({ name: 'scopegate-e2e', version: '1.0.0' });
    return { client, transport };
  };
  let { client, transport } = open();
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    await transport.finishAuth(codes.takeCode());
    await transport.close();
    ({ client, transport } = open());
    await client.connect(transport);
  }
  transcript.sessions.push(transport.sessionId);
  return { client, transport };
}

/**
 * Calls a tool; when the SDK sent the user to the IdP for it (a 403 insufficient_scope, or
 * a 401), exchanges the code and calls again, at most twice, as an app would.
 */
async function callTool(session, codes, name, toolArgs = {}) {
  const record = { tool: name, step_ups: 0 };
  transcript.calls.push(record);
  for (;;) {
    try {
      const result = await session.client.callTool({ name, arguments: toolArgs });
      record.ok = !result.isError;
      record.text = result.content?.[0]?.text ?? null;
      return result;
    } catch (error) {
      if (error instanceof UnauthorizedError && codes.code && record.step_ups < 2) {
        record.step_ups++;
        await session.transport.finishAuth(codes.takeCode());
        continue;
      }
      record.ok = false;
      record.error = error.message;
      record.code = error.code ?? null;
      return null;
    }
  }
}

async function sdkScenario() {
  const provider = new Provider(CLIENT_IDS.sdk, new User(args.user, args['decline-at-first'], transcript.consents));
  const session = await connect(provider);
  await callTool(session, provider, 'echo', { message: 'hello' });
  await callTool(session, provider, 'get-env');
  await callTool(session, provider, 'echo', { message: 'still here' });
  transcript.sessions.push(session.transport.sessionId);
  await session.transport.terminateSession();
  await session.client.close();
}

async function precheckScenario() {
  if (!args.package || !args.policy) throw new Error('--package and --policy are needed');
  const scopegate = await import(pathToFileURL(resolve(args.package, 'node/index.js')).href);
  if (typeof scopegate.withHeldScopes !== 'function') {
    throw new Error(`the scopegate package in ${args.package} has no withHeldScopes (its MCP API)`);
  }
  const policy = scopegate.Policy.fromJson(readFileSync(args.policy, 'utf8'));
  const inner = new Provider(CLIENT_IDS.precheck, new User(args.user, args['decline-at-first'], transcript.consents));
  // Authorization requests carry what the token holds as well as what the SDK asks for.
  // (`url`: a token the gateway there would refuse, for another audience, holds nothing.)
  const provider = scopegate.withHeldScopes(inner, { policy, url: MCP_URL });
  const session = await connect(provider, inner);
  // The pre-checks take the SDK's OAuthTokens as they are (access token and granted scope).
  const token = () => provider.tokens();
  const url = MCP_URL.href;

  const { tools } = await session.client.listTools();
  const access = policy.mcpAccess({ url, token: token(), tools: tools.map((tool) => tool.name) });
  transcript.access = access.tools.filter((tool) => ['echo', 'get-env'].includes(tool.name));
  transcript.prechecks = [];
  for (const [name, toolArgs] of [['echo', { message: 'hello' }], ['get-env', {}], ['echo', { message: 'still here' }]]) {
    const request = policy.mcpScopeRequest({ url, token: token(), method: 'tools/call', name });
    transcript.prechecks.push({ tool: name, ...request });
    if (!request.allowed) {
      // Ask before calling, with the SDK's own auth(), which sends the user to the IdP
      // (redirectToAuthorization); finishAuth exchanges the code. The SDK is asked for the
      // missing scopes only, as it asks for a challenge's scope alone: withHeldScopes adds
      // what the token holds, so the request is the pre-check's `scope`.
      const scope = request.missing.join(' ');
      transcript.asked_sdk_for = scope;
      const result = await auth(provider, { serverUrl: MCP_URL, scope, fetchFn: recordingFetch });
      if (result === 'REDIRECT') await session.transport.finishAuth(inner.takeCode());
    }
    await callTool(session, inner, name, toolArgs);
  }
  transcript.sessions.push(session.transport.sessionId);
  await session.transport.terminateSession();
  await session.client.close();
}

try {
  if (args.scenario === 'sdk') await sdkScenario();
  else if (args.scenario === 'precheck') await precheckScenario();
  else throw new Error(`unknown scenario ${args.scenario}`);
  finish(0);
} catch (error) {
  transcript.error = error.stack ?? String(error);
  finish(1);
}
