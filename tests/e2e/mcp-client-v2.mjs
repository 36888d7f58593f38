// An MCP client on the v2 TypeScript SDK (`@modelcontextprotocol/client`) behind the scopegate
// filter, end to end: `Client` + `StreamableHTTPClientTransport` with an OAuthClientProvider,
// signing in at the demo IdP (`examples/idp/idp.mjs`) as mcp-client.mjs does on the 1.32 SDK.
// Everything is discovered from the gateway's 401 (RFC 9728 metadata, then the IdP's).
//
// What the v2 SDK does itself, and mcp-client.mjs's SDK did not: on a 403 insufficient_scope
// the transport asks for the union of what it asked for before, what the token holds and
// what the challenge names (SEP-2350), and it steps up at most once per request. An app
// retries a call after finishAuth; this one sends the user to the IdP at most once per call
// (a second redirect for the same call is not followed, and recorded).
//
// Scenarios (`--scenario`):
// - `sdk`: connect (401, sign in), call `echo`, call `get-env` (403; the SDK re-authorizes
//   with the union), `echo` once more on the same client, then close. `--protocol legacy`
//   (the SDK's default: the 2025 revision with a session) or `--protocol 2026-07-28` (pinned:
//   the 2026 revision, stateless, `Mcp-Method`/`Mcp-Name` headers mirrored from the body).
// - `precheck`: the same calls pre-checked with the scopegate npm package (`--package`,
//   `--policy`): `policy.mcpScopeRequest` gives the whole scope to ask for (held and
//   needed), which goes to the SDK's auth() as it is: no `withHeldScopes` wrapper.
//
// `--tamper get-env=echo` (with `sdk`): the fetch given to the transport rewrites the
// `Mcp-Name` header of every `tools/call get-env` to `echo`, so that header and body
// disagree (every one: on a -32020 the SDK's callTool re-lists the tools and sends the call
// once more before it gives up); the call's record keeps the error the SDK surfaced
// (`error_class`, `code`, `error`, `error_data`, `protocol_error`: whether it is the SDK's
// ProtocolError), and the requests are marked `tampered`.
//
// Prints one line, `mcp-e2e: {…}`, with the same fields as mcp-client.mjs, plus every MCP
// request as sent (`requests`: method, JSON-RPC method, the Mcp-* headers, the status).
//
// Usage: node mcp-client-v2.mjs --mcp http://127.0.0.1:8080/mcp --scenario sdk --user alice
//        [--protocol 2026-07-28] [--decline-at-first mcp:admin] [--package … --policy …]
//        [--tamper get-env=echo]
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { auth, Client, ProtocolError, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import { REDIRECT_URI, User } from './idp-user.mjs';

const { values: args } = parseArgs({
  options: {
    mcp: { type: 'string', default: 'http://127.0.0.1:8080/mcp' },
    scenario: { type: 'string', default: 'sdk' },
    user: { type: 'string', default: 'alice' },
    protocol: { type: 'string', default: 'legacy' },
    'decline-at-first': { type: 'string', multiple: true, default: [] },
    package: { type: 'string' },
    policy: { type: 'string' },
    tamper: { type: 'string' },
  },
});
const MCP_URL = new URL(args.mcp);
const CLIENT_ID = 'scopegate-mcp-v2';

const transcript = {
  sdk: '@modelcontextprotocol/client',
  scenario: args.scenario,
  protocol: args.protocol,
  user: args.user,
  client_id: CLIENT_ID,
  challenges: [],
  authorization_requests: [],
  // Redirects to the IdP the app did not follow (a second one for the same call).
  unfollowed_authorizations: [],
  consents: [],
  tokens: [],
  calls: [],
  discovery: [],
  requests: [],
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

/** `--tamper body=header`: every `tools/call body` goes out with `Mcp-Name: header`. */
const tamper = args.tamper ? args.tamper.split('=') : null;

/** The fetch given to the transport (and so to the SDK's discovery and token requests). */
async function recordingFetch(input, init) {
  const url = String(input instanceof Request ? input.url : input);
  let tampered = false;
  if (tamper && url.startsWith(MCP_URL.href) && rpcOf(init?.body) === `tools/call ${tamper[0]}`) {
    init = { ...init, headers: new Headers(init.headers) };
    init.headers.set('mcp-name', tamper[1]);
    tampered = true;
  }
  const response = await fetch(input, init);
  const path = new URL(url).pathname;
  if (url.startsWith(MCP_URL.href)) {
    const headers = new Headers(init?.headers);
    transcript.requests.push({
      tampered,
      method: init?.method ?? 'GET',
      rpc: rpcOf(init?.body) ?? null,
      mcp_method: headers.get('mcp-method'),
      mcp_name: headers.get('mcp-name'),
      mcp_protocol_version: headers.get('mcp-protocol-version'),
      status: response.status,
      // What came back when the gateway or the server refused it.
      body: response.status >= 400 ? await response.clone().text() : undefined,
      content_type: response.status >= 400 ? response.headers.get('content-type') : undefined,
    });
  }
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
  if (path.startsWith('/.well-known/oauth-protected-resource')) {
    transcript.discovery.push({ url, status: response.status, document: await response.clone().json().catch(() => null) });
  } else if (path.includes('/.well-known/')) {
    transcript.discovery.push({ url, status: response.status });
  }
  return response;
}

function claimsOf(jwt) {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
  } catch {
    return null;
  }
}

/**
 * The OAuthClientProvider: a public client pre-registered at the IdP. The v2 SDK stamps the
 * issuer on what it saves and checks it on the way back (SEP-2352), so discovery state is
 * kept. `visits` is how many times the app still lets the SDK send the user to the IdP.
 */
class Provider {
  #tokens;
  #verifier;
  #state;
  #info;
  #discovery;

  constructor(user) {
    this.user = user;
    this.code = null;
    this.visits = 1;
  }

  get redirectUrl() {
    return REDIRECT_URI;
  }

  get clientMetadata() {
    return {
      client_name: 'scopegate e2e MCP client (v2 SDK)',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation() {
    return this.#info ?? { client_id: CLIENT_ID };
  }

  saveClientInformation(info) {
    this.#info = info;
  }

  tokens() {
    return this.#tokens;
  }

  saveTokens(tokens) {
    const fresh = tokens.access_token !== this.#tokens?.access_token;
    this.#tokens = tokens;
    if (!fresh) return;
    const claims = claimsOf(tokens.access_token);
    transcript.tokens.push({
      scope: tokens.scope ?? null,
      refresh_token: Boolean(tokens.refresh_token),
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
    const request = {
      endpoint: `${authorizationUrl.origin}${authorizationUrl.pathname}`,
      client_id: params.get('client_id'),
      scope: params.get('scope'),
      resource: params.get('resource'),
      response_type: params.get('response_type'),
      code_challenge_method: params.get('code_challenge_method'),
      code_challenge: Boolean(params.get('code_challenge')),
      redirect_uri: params.get('redirect_uri'),
      state: Boolean(params.get('state')),
    };
    if (this.visits <= 0) {
      transcript.unfollowed_authorizations.push(request);
      throw new Error(`the app sends the user to the IdP once per call; not again for ${request.scope}`);
    }
    this.visits--;
    transcript.authorization_requests.push(request);
    const answer = await this.user.authorize(authorizationUrl.href);
    if (answer.get('error')) throw new Error(`the IdP refused: ${answer.get('error')}: ${answer.get('error_description')}`);
    if (answer.get('state') !== this.#state) throw new Error('the IdP returned another state');
    // The whole redirect: code and `iss` (RFC 9207, which the IdP advertises and the SDK checks).
    this.code = answer;
  }

  /** The parameters of the last redirect, once, for finishAuth. */
  takeCode() {
    const answer = this.code;
    this.code = null;
    if (!answer?.get('code')) throw new Error('the SDK asked for authorization but no code came back');
    return answer;
  }
}

function clientOptions() {
  if (args.protocol === 'legacy') return {};
  return { versionNegotiation: { mode: args.protocol === 'auto' ? 'auto' : { pin: args.protocol } } };
}

/** Connects: the first attempt meets the 401 and signs in; a new transport connects. */
async function connect(provider) {
  const open = () => ({
    transport: new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider, fetch: recordingFetch }),
    client: new Client({ name: 'scopegate-e2e-v2', version: '1.0.0' }, clientOptions()),
  });
  let { client, transport } = open();
  provider.visits = 1;
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || !provider.code) throw error;
    await transport.finishAuth(provider.takeCode());
    await transport.close();
    ({ client, transport } = open());
    await client.connect(transport);
  }
  transcript.era = typeof client.getProtocolEra === 'function' ? client.getProtocolEra() : undefined;
  transcript.negotiated_protocol_version = client.getNegotiatedProtocolVersion?.() ?? null;
  transcript.sessions.push(transport.sessionId ?? null);
  return { client, transport };
}

/** Calls a tool; when the SDK sent the user to the IdP for it, exchanges the code and calls again. */
async function callTool(session, provider, name, toolArgs = {}) {
  const record = { tool: name, step_ups: 0 };
  transcript.calls.push(record);
  provider.visits = 1;
  for (;;) {
    try {
      const result = await session.client.callTool({ name, arguments: toolArgs });
      record.ok = !result.isError;
      record.text = result.content?.[0]?.text ?? null;
      return result;
    } catch (error) {
      if (error instanceof UnauthorizedError && provider.code) {
        record.step_ups++;
        await session.transport.finishAuth(provider.takeCode());
        continue;
      }
      record.ok = false;
      record.error = error.message;
      record.code = error.status ?? error.data?.status ?? error.code ?? null;
      record.error_class = error.constructor?.name ?? null;
      record.error_data = error.data ?? null;
      record.protocol_error = error instanceof ProtocolError;
      return null;
    }
  }
}

async function close(session) {
  transcript.sessions.push(session.transport.sessionId ?? null);
  if (session.transport.sessionId) await session.transport.terminateSession?.();
  await session.client.close();
}

async function sdkScenario() {
  const provider = new Provider(new User(args.user, args['decline-at-first'], transcript.consents));
  const session = await connect(provider);
  await callTool(session, provider, 'echo', { message: 'hello' });
  await callTool(session, provider, 'get-env');
  await callTool(session, provider, 'echo', { message: 'still here' });
  await close(session);
}

async function precheckScenario() {
  if (!args.package || !args.policy) throw new Error('--package and --policy are needed');
  const scopegate = await import(pathToFileURL(resolve(args.package, 'node/index.js')).href);
  const policy = scopegate.Policy.fromJson(readFileSync(args.policy, 'utf8'));
  // The provider as it is: the v2 SDK's step-up does the union itself, and the pre-check's
  // `scope` already carries what the token holds, so withHeldScopes has nothing to add.
  const provider = new Provider(new User(args.user, args['decline-at-first'], transcript.consents));
  const session = await connect(provider);
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
      // Ask before calling, with the SDK's auth() and the pre-check's whole scope.
      transcript.asked_sdk_for = request.scope;
      provider.visits = 1;
      const result = await auth(provider, { serverUrl: MCP_URL, scope: request.scope, fetchFn: recordingFetch });
      if (result === 'REDIRECT') await session.transport.finishAuth(provider.takeCode());
    }
    await callTool(session, provider, name, toolArgs);
  }
  await close(session);
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
