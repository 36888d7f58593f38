// Uses every export of `scopegate` with the types a user writes, so that `tsc --noEmit`
// (strict) checks the hand-written index.d.ts against real use. Never run, only checked.
import {
  init, Policy, ScopeRules, decodeToken, scopesOf, parseChallenges, nextScopeRequest,
  normalizePath, isValidScope, assertScopesGranted, createPkce, authorizationUrl, scopedFetch,
  ScopegateError, InsufficientScopeError, ScopesNotGrantedError,
  type CheckResult, type CheckRequest, type Challenge, type DecodedToken, type ErrorCode,
  type Pkce, type ScopeRequest, type AuthorizationUrlOptions, type ScopedFetchOptions, type Now, type Scopes,
} from 'scopegate';
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
