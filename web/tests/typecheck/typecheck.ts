// Uses every export of `scopegate` with the types a user writes, so that `tsc --noEmit`
// (strict) checks the hand-written index.d.ts against real use. Never run, only checked.
import {
  init, Policy, ScopeRules, decodeToken, scopesOf, parseChallenges, nextScopeRequest,
  normalizePath, isValidScope, assertScopesGranted, createPkce, authorizationUrl, scopedFetch,
  ScopegateError, InsufficientScopeError, ScopesNotGrantedError,
  type CheckResult, type CheckRequest, type Challenge, type DecodedToken, type ErrorCode,
  type Pkce, type ScopeRequest, type AuthorizationUrlOptions, type ScopedFetchOptions, type Now, type Scopes,
  withHeldScopes, type McpAccess, type McpAccessRequest, type McpCallAccess, type McpCallRequest, type McpDenialCode,
  type McpToken, type HeldScopesProvider, type WithHeldScopesOptions,
} from 'scopegate';
// The MCP TypeScript SDK's own types (web/package.json's devDependency, mapped by tsconfig.json).
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import * as web from 'scopegate/web';
import * as node from 'scopegate/node';
import * as bundler from 'scopegate/bundler';

export async function everything(policyText: string, jwt: string): Promise<void> {
  await init();
  await web.init(new URL('https://app.example/scopegate_web_bg.wasm'));
  const policies: Policy[] = [node.Policy.fromJson(policyText), bundler.Policy.fromJson({ version: 1 })];

  const policy: Policy = Policy.fromJson(policyText);
  const realm: string = policy.realm;
  const metadata: Record<string, unknown> | null = policy.resourceMetadata;
  const rules: ScopeRules = policy.scopeRules;
  const when: Now = new Date();
  const result: CheckResult = policy.check('POST', '/api/resources', jwt, when);
  const allowed: boolean = result.allowed;
  const status: number | null = result.status;
  const missing: string[] = result.missing;
  const required: string[] = result.required;
  void required;
  const challenge: string | null = result.challenge;
  const request: CheckRequest = { method: 'GET', url: 'https://api.example/x', authorization: [`Bearer ${jwt}`], origin: null };
  const again: CheckResult = policy.checkRequest(request, 1_767_225_600);
  const held: string[] = policy.scopesOf(jwt);
  const next: ScopeRequest = policy.nextScopeRequest(held, result.missing);
  const covered: boolean = policy.covers('order', 'order:item') && rules.covers('a', 'a:b');

  const decoded: DecodedToken = decodeToken(jwt);
  const alg: string = decoded.header.alg;
  const claims: unknown = decoded.claims['scope'];
  const scopes: string[] = [...scopesOf(jwt), ...scopesOf(jwt, policy)];
  const challenges: Challenge[] = parseChallenges('Bearer realm="api", error="insufficient_scope", scope="a b"');
  const scopeParam: string | undefined = challenges[0]?.params['scope'];
  const list: [string, string][] = challenges[0]?.paramList ?? [];
  const ask: Scopes = 'openid resource:read';
  const step: ScopeRequest = nextScopeRequest(ask, ['resource:write'], new ScopeRules({ separator: ':', writeSuffix: null, prefixes: ['tx-'] }));
  const step2: ScopeRequest = nextScopeRequest([], 'a', policy);
  const step3: ScopeRequest = nextScopeRequest([], 'a', { separator: '/' });
  const path: string = normalizePath('/a/./b');
  const valid: boolean = isValidScope('order:item');
  const granted: string[] = assertScopesGranted(['openid'], jwt, policy);

  const pkce: Pkce = await createPkce();
  const options: AuthorizationUrlOptions = {
    authorizationEndpoint: 'https://idp.example/authorize',
    clientId: 'spa',
    redirectUri: 'https://app.example/callback',
    scopes: step.scope,
    state: 'xyz',
    codeChallenge: pkce.codeChallenge,
    codeChallengeMethod: pkce.codeChallengeMethod,
    resource: 'https://api.example/',
    extraParams: { prompt: 'consent' },
  };
  const url: string = authorizationUrl(options);

  const fetchOptions: ScopedFetchOptions = { policy, getToken: async () => jwt, fetch: (r: Request) => fetch(r) };
  try {
    const response: Response = await scopedFetch('https://api.example/api/resources', { method: 'POST' }, fetchOptions);
    await scopedFetch(new URL('https://api.example/x'), undefined, { policy, getToken: () => null });
    await scopedFetch(new Request('https://api.example/x'), {}, { policy, getToken: () => undefined, now: 0 });
    void response;
  } catch (err) {
    if (err instanceof InsufficientScopeError) {
      const need: string[] = err.missing;
      const all: string[] = err.required;
      void all;
      const nextScope: string | undefined = err.scopeRequest?.scope;
      const source: 'precheck' | 'server' = err.source;
      const response: Response | undefined = err.response;
      void [need, nextScope, source, response, err.held];
    } else if (err instanceof ScopesNotGrantedError) {
      const notGranted: string[] = err.notGranted;
      void notGranted;
    } else if (err instanceof ScopegateError) {
      const code: ErrorCode = err.code;
      const where: string | undefined = err.path;
      const message: string = err.message;
      void [code, where, message, err.reason, err.at, err.status, err.challenge];
    }
  }
  const own = new ScopegateError('invalid_argument', 'example');
  const isError: Error = own;
  policy.free();
  void [policies, realm, metadata, allowed, status, missing, challenge, again, next, covered, alg, claims, scopes,
    scopeParam, list, step2, step3, path, valid, granted, url, isError];
}

export async function mcp(policy: Policy, sdkProvider: OAuthClientProvider, jwt: string): Promise<void> {
  // Tool, prompt and resource lists as tools/list, prompts/list and resources/list return them.
  const listed = {
    tools: [{ name: 'echo', inputSchema: { type: 'object' as const } }],
    prompts: [{ name: 'p', description: 'a prompt' }],
    resources: [{ uri: 'demo://docs/7', name: 'seven', mimeType: 'text/plain' }],
  };
  const request: McpAccessRequest = { url: new URL('https://mcp.example/mcp'), token: await sdkProvider.tokens(), ...listed };
  const access: McpAccess = policy.mcpAccess(request, new Date());
  const names: string[] = [...access.tools, ...access.prompts].map((t) => t.name);
  const uris: string[] = access.resources.map((r) => r.uri);
  const first: McpCallAccess | undefined = access.tools[0];
  const scope: string | null = first?.scope ?? null;
  const why: McpDenialCode | string | undefined = first?.reason;
  const tokenError: string | undefined = first?.tokenError;
  const maxAge: number | undefined = first?.maxAge;
  policy.mcpAccess({ url: '/mcp', token: jwt, tools: ['echo'], prompts: ['p'], resources: ['demo://docs/7'] });
  policy.mcpAccess({ url: '/mcp', token: null });
  const tokens: McpToken = { access_token: jwt, scope: 'mcp:tools' };
  const call: McpCallRequest = { url: 'https://mcp.example/mcp', token: tokens, method: 'tools/call', name: 'get-env' };
  const answer: McpCallAccess = policy.mcpScopeRequest(call, 1_767_225_600);
  const read = policy.mcpScopeRequest({ url: '/mcp', token: jwt, method: 'resources/read', uri: 'demo://docs/7' });
  const allowed: boolean = answer.allowed && read.allowed;
  const lacking: string[] = [...answer.required, ...answer.missing];

  // The wrapper keeps the SDK's provider type, so it goes where the SDK takes one.
  const options: WithHeldScopesOptions = { policy, url: 'https://mcp.example/mcp' };
  const wrapped: OAuthClientProvider = withHeldScopes(sdkProvider, options);
  const minimal: HeldScopesProvider = withHeldScopes(
    { tokens: () => undefined, redirectToAuthorization: (url: URL) => void url },
    { rules: new ScopeRules({ separator: '/' }) },
  );
  withHeldScopes(sdkProvider, { rules: { separator: ':' } });
  withHeldScopes(sdkProvider);
  const transport = new StreamableHTTPClientTransport(new URL('https://mcp.example/mcp'), { authProvider: wrapped });
  void [names, uris, scope, why, tokenError, maxAge, allowed, lacking, minimal, transport];
}
