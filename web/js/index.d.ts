// Types of the npm package `scopegate` (every build: web, bundler, node).
//
// No signature is checked on the client. `decodeToken`, `scopesOf` and `Policy.check` read a
// token as the gateway would if its signature is valid; the gateway verifies the signature.
// Never use these answers to protect anything: they save a round trip and tell the user
// which scopes to ask for.

/** Stable codes of `ScopegateError.code`. */
export type ErrorCode =
  | 'invalid_argument'
  | 'invalid_policy'
  | 'invalid_token'
  | 'invalid_challenge'
  | 'invalid_scope'
  | 'invalid_path'
  | 'not_initialized'
  | 'crypto_unavailable'
  | 'scopes_not_granted'
  | 'insufficient_scope'
  | 'unauthorized'
  | 'invalid_request'
  | 'insufficient_user_authentication'
  | 'internal';

/** Every error thrown by scopegate: an `Error` with a stable `code`. */
export class ScopegateError extends Error {
  readonly code: ErrorCode;
  /** `invalid_policy`: the JSON path of the offending value, e.g. `routes[3].path`. */
  readonly path?: string;
  /** `invalid_token`, `invalid_scope`, `invalid_path`: the core's reason code, e.g. `expired`. */
  readonly reason?: string;
  /** `invalid_challenge`: the byte offset where parsing stopped. */
  readonly at?: number;
  /** Refusals by `scopedFetch`: where the refusal comes from. */
  readonly source?: 'precheck' | 'server';
  /** Refusals by `scopedFetch`: the status the gateway answers (or answered). */
  readonly status?: number | null;
  /** Refusals by `scopedFetch`: the `WWW-Authenticate` challenge. */
  readonly challenge?: string | null;
  /** Refusals by `scopedFetch`: the request. */
  readonly method?: string;
  readonly url?: string;
  /** Refusals by `scopedFetch`: the local pre-check's answer. */
  readonly check?: CheckResult;
  /**
   * A step-up (code `insufficient_user_authentication`, RFC 9470): the authentication
   * context classes to ask for, one of them; pass them to `authorizationUrl({acrValues})`.
   */
  readonly acrValues?: string[];
  /** A step-up: the `max_age` to ask for; pass it to `authorizationUrl({maxAge})`. */
  readonly maxAge?: number;
  constructor(code: ErrorCode, message: string, details?: object);
}

/** A request needs scopes the token does not hold (code `insufficient_scope`). */
export class InsufficientScopeError extends ScopegateError {
  readonly code: 'insufficient_scope';
  /** Every scope the request needs: the challenge's `scope`. Empty for an unconfigured route. */
  readonly required: string[];
  /** Those of `required` the token lacks (the smallest missing set). Empty for an unconfigured route. */
  readonly missing: string[];
  /**
   * What to ask the authorization server for next: `add` is what is not held yet, `scope`
   * the whole `scope` parameter (held plus missing, minimised). `null` when nothing is
   * missing. An empty `add` after a server refusal means the token already holds the
   * scopes by this policy: the gateway's policy differs from the client's.
   */
  readonly scopeRequest: ScopeRequest | null;
  /** The token's effective scopes. */
  readonly held: string[];
  readonly source: 'precheck' | 'server';
  /** The server's response, for a server refusal. */
  readonly response?: Response;
}

/** A token came back without every requested scope (code `scopes_not_granted`). */
export class ScopesNotGrantedError extends ScopegateError {
  readonly code: 'scopes_not_granted';
  /** Requested scopes the token does not cover. */
  readonly notGranted: string[];
  /** The token's effective scopes. */
  readonly granted: string[];
}

/** The answer of `Policy.check`: what the gateway does with the request. */
export interface CheckResult {
  /** The request reaches the API (or the gateway serves the metadata document). */
  allowed: boolean;
  /** 400, 401, 403 or 413 for a denial; 200 for the served metadata document; `null` for a pass (or `read_body`). */
  status: number | null;
  /**
   * Every scope of the requirement alternative a 403 `insufficient_scope` chose (the one
   * with the smallest missing set): what the challenge's `scope` names, else empty.
   */
  required: string[];
  /** Those of `required` the token lacks (a 403 `insufficient_scope`), else empty. */
  missing: string[];
  /** The `WWW-Authenticate` value the gateway sends, `null` for a pass. */
  challenge: string | null;
  /** The decision's stable name: `allow_authorized`, `deny_insufficient_scope`, `deny_step_up`, ... */
  code: string;
  /** The challenge's `error` (`unauthorized` when there is no token), `null` for a pass. */
  error: 'unauthorized' | 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'insufficient_user_authentication' | null;
  /** RFC 9470 `max_age` to meet for a step-up. */
  maxAge: number | null;
  /** RFC 9470 `acr_values` of a step-up: the authentication context classes to ask for (one of them); absent otherwise. */
  acrValues?: string[];
  /** The JSON body of a denial, or the metadata document. */
  body: string | null;
  /** Why the token is refused (`expired`, `wrong_audience`, ...), for a 401 `invalid_token`. */
  tokenError: string | null;
  /** The path template of the matched route. */
  route: string | null;
  /** The request's `Origin` when the policy lets it read denials (CORS). */
  allowedOrigin: string | null;
  /** For a pass: the claim headers the gateway adds for the upstream API. */
  headers: Record<string, string>;
}

/** A request with every header the gateway looks at. */
export interface CheckRequest {
  method: string;
  /** A request target (`/api/orders?x=1`) or an absolute URL. */
  url: string;
  /** Every `Authorization` header value. */
  authorization?: string | string[];
  origin?: string | null;
  accessControlRequestMethod?: string | null;
  /**
   * The request body (JSON-RPC text), which an MCP route's rules read; without it a `POST`
   * to an MCP route answers `{allowed: false, status: null, code: "read_body"}`.
   */
  body?: string | null;
  /** The `Mcp-Method` header (SEP-2243), checked against the body. */
  mcpMethod?: string | null;
  /** The `Mcp-Name` header (SEP-2243), checked against the body. */
  mcpName?: string | null;
  /**
   * The `MCP-Protocol-Version` header. A `2026-07-28` request must mirror its method and
   * name in `mcpMethod` / `mcpName`, and its refusals come as JSON-RPC error bodies.
   */
  mcpProtocolVersion?: string | null;
}

/** When to check: a `Date`, or seconds since 1970 (a JWT NumericDate). Default: now. */
export type Now = Date | number;

/** Scopes: an array, or a space-separated string. */
export type Scopes = string[] | string;

/** A progressive scope request. */
export interface ScopeRequest {
  /** Scopes to ask for that are not covered yet, minimal. */
  add: string[];
  /** The whole `scope` parameter of the next authorization request. */
  scope: string;
}

/** A loaded policy: the same document the gateway loads. */
export class Policy {
  private constructor();
  /** Loads and compiles a policy; a `ScopegateError` with code `invalid_policy` and `path` otherwise. */
  static fromJson(text: string | object): Policy;
  readonly realm: string;
  /** The RFC 9728 metadata document, when the policy names a `resource`. */
  readonly resourceMetadata: Record<string, unknown> | null;
  readonly scopeRules: ScopeRules;
  /** What the gateway answers for `method url` with this token (signature taken as valid). */
  check(method: string, url: string, jwt?: string | null, now?: Now): CheckResult;
  /** The same, for a request with several or non-Bearer `Authorization` values, `Origin`, preflight. */
  checkRequest(request: CheckRequest, now?: Now): CheckResult;
  /** The token's effective scopes: scope claims plus mapped roles. */
  scopesOf(jwt: string): string[];
  nextScopeRequest(held: Scopes, missing: Scopes): ScopeRequest;
  covers(granted: string, required: string): boolean;
  /**
   * For an MCP client: which tools, prompts and resources `token` can use at the MCP endpoint
   * `url`, each decided by the core as a `tools/call`, `prompts/get` or `resources/read`
   * JSON-RPC request POSTed there, with the scope request that would allow it.
   */
  mcpAccess(request: McpAccessRequest, now?: Now): McpAccess;
  /** For one MCP call: allowed, and if not the `scope` to ask for (held plus needed, minimised). */
  mcpScopeRequest(request: McpCallRequest, now?: Now): McpCallAccess;
  /** Frees the compiled policy now rather than when it is garbage-collected; it cannot be used afterwards. */
  free(): void;
}

/** Scope coverage rules (a policy's `scopes` section). */
export class ScopeRules {
  /** Defaults: separator `:`, write suffix `.write` (`null` disables it), no prefixes. */
  constructor(options?: { separator?: string; writeSuffix?: string | null; prefixes?: Scopes });
  covers(granted: string, required: string): boolean;
  nextRequest(held: Scopes, missing: Scopes): ScopeRequest;
}

/** A decoded JWS. Not verified: do not trust it for anything but display and pre-checks. */
export interface DecodedToken {
  header: { alg: string; kid?: string; typ?: string; [name: string]: unknown };
  claims: { [claim: string]: unknown };
}

/** One challenge of a `WWW-Authenticate` value. */
export interface Challenge {
  /** The auth-scheme as written (compare case-insensitively). */
  scheme: string;
  token68: string | null;
  /** Parameters by lower-cased name, values unescaped (the first of duplicates). */
  params: Record<string, string>;
  /** Every parameter in order. */
  paramList: [string, string][];
}

export interface Pkce {
  /** Keep it (e.g. in sessionStorage) for the token request. */
  codeVerifier: string;
  codeChallenge: string;
  codeChallengeMethod: 'S256';
}

export interface AuthorizationUrlOptions {
  authorizationEndpoint: string;
  /** Not empty. */
  clientId: string;
  /** An absolute URI without a fragment (RFC 6749 section 3.1.2). */
  redirectUri: string;
  /** Valid scope tokens; none leaves `scope` out. */
  scopes: Scopes;
  /** Opaque value echoed back; check it on the redirect. */
  state?: string;
  /** From `createPkce()`. */
  codeChallenge: string;
  codeChallengeMethod?: 'S256';
  /** RFC 8707 resource indicator(s): absolute URIs without a fragment. */
  resource?: string | string[];
  /** Default `code`. */
  responseType?: string;
  /** RFC 9470 step-up: the `acr_values` a denial asked for (`StepUpRequiredError.acrValues`). */
  acrValues?: string[] | string;
  /** RFC 9470 step-up / OIDC: the `max_age` in seconds a denial asked for (a whole number). */
  maxAge?: number;
  /** Other parameters (`prompt`, `login_hint`, ...), after the others; not one of those the options set. */
  extraParams?: Record<string, string>;
}

export interface ScopedFetchOptions {
  policy: Policy;
  /** The current access token, or `null` for none (an empty string is none too). */
  getToken: () => string | null | undefined | Promise<string | null | undefined>;
  /** Default: `globalThis.fetch`. */
  fetch?: (request: Request) => Promise<Response>;
  now?: Now;
}

/** An access token, or the MCP SDK's `OAuthTokens` (its `scope` counts as held too); none: not signed in. */
export type McpToken = string | { access_token: string; scope?: string | undefined } | null | undefined;

export interface McpAccessRequest {
  /** The MCP endpoint the calls are POSTed to: an absolute URL (or a path). */
  url: string | URL;
  token?: McpToken;
  /** Tool names, or the tools of a `tools/list` result (`{name, ...}`). */
  tools?: ReadonlyArray<string | { name: string }>;
  /** Prompt names, or the prompts of a `prompts/list` result. */
  prompts?: ReadonlyArray<string | { name: string }>;
  /** Resource URIs, or the resources of a `resources/list` result (`{uri, ...}`). */
  resources?: ReadonlyArray<string | { uri: string }>;
}

export interface McpCallRequest {
  url: string | URL;
  token?: McpToken;
  /** The JSON-RPC method: `tools/call`, `prompts/get`, `resources/read`, ... */
  method: string;
  /** `params.name` (`tools/call`, `prompts/get`). */
  name?: string | null;
  /** `params.uri` (`resources/read`, `resources/subscribe`, ...). */
  uri?: string | null;
}

/** Decision codes for which no scope helps (`McpCallAccess.reason`). */
export type McpDenialCode =
  | 'deny_no_token'
  | 'deny_invalid_token'
  | 'deny_step_up'
  | 'deny_no_route'
  | 'deny_bad_body'
  | 'deny_bad_parameter'
  | 'deny_bad_header'
  | 'deny_bad_path'
  | 'deny_bad_credentials';

/** What the gateway does with one MCP call. */
export interface McpCallAccess {
  /** The gateway lets the call through. */
  allowed: boolean;
  /** Every scope of the requirement alternative a 403 chose (the challenge's `scope`), else empty. */
  required: string[];
  /** Those of `required` the token lacks, else empty. */
  missing: string[];
  /**
   * The whole `scope` parameter of the authorization request that would allow the call:
   * the scopes held plus those needed, minimised, never dropping a held scope. `null` when
   * the call is allowed, or when no scope helps (then `reason` says why).
   */
  scope: string | null;
  /** Present when `scope` is `null` and the call is refused: the core's decision code. */
  reason?: McpDenialCode | (string & {});
  /** For `deny_invalid_token`: why the token is refused (`expired`, `wrong_audience`, ...). */
  tokenError?: string;
  /** For `deny_step_up`: the RFC 9470 `max_age` to authenticate within. */
  maxAge?: number;
  /** For `deny_step_up`: the RFC 9470 `acr_values` to ask for (one of them); pass them to `authorizationUrl({acrValues})`. */
  acrValues?: string[];
}

export interface McpAccess {
  tools: (McpCallAccess & { name: string })[];
  prompts: (McpCallAccess & { name: string })[];
  resources: (McpCallAccess & { uri: string })[];
}

/** What `withHeldScopes` needs of a provider; the SDK's `OAuthClientProvider` has it. */
export interface HeldScopesProvider {
  tokens():
    | { access_token: string; scope?: string | undefined }
    | undefined
    | Promise<{ access_token: string; scope?: string | undefined } | undefined>;
  redirectToAuthorization(authorizationUrl: URL): void | Promise<void>;
}

export interface WithHeldScopesOptions {
  /** Reads the access token as the gateway does (its scope claims and role map) and gives the scope rules. */
  policy?: Policy | null;
  /** Scope rules for the minimisation, instead of the policy's (default rules without either). */
  rules?: Policy | ScopeRules | { separator?: string; writeSuffix?: string | null; prefixes?: Scopes } | null;
  /**
   * The MCP endpoint, with `policy`: a stored token the gateway there refuses for anything
   * but its age (another audience or issuer, not a JWT) holds nothing for this server.
   */
  url?: string | URL | null;
}

/** Loads the WebAssembly module. Required (once, awaited) before anything else in the web build; a no-op in the node and bundler builds. */
export function init(module?: unknown): Promise<void>;

/** Decodes a JWS's header and claims. No signature is checked. */
export function decodeToken(jwt: string): DecodedToken;
/** The token's effective scopes, as the gateway computes them (with a policy: roles mapped). No signature is checked. */
export function scopesOf(jwt: string, policy?: Policy | null): string[];
/** Every challenge of a `WWW-Authenticate` value, by the RFC 9110 grammar. */
export function parseChallenges(wwwAuthenticate: string): Challenge[];
/** The next progressive scope request (default rules unless a policy or rules are given). */
export function nextScopeRequest(
  heldScopes: Scopes,
  missing: Scopes,
  rules?: Policy | ScopeRules | { separator?: string; writeSuffix?: string | null; prefixes?: Scopes },
): ScopeRequest;
/** The path routes match on (the gateway's normalization). */
export function normalizePath(target: string): string;
export function isValidScope(scope: string): boolean;
/** Throws `ScopesNotGrantedError` unless the token covers every requested scope; returns its scopes. */
export function assertScopesGranted(requested: Scopes, jwt: string, policy?: Policy | null): string[];
/** A PKCE pair (RFC 7636, S256) from Web Crypto. */
export function createPkce(): Promise<Pkce>;
/** The authorization request URL (authorization code + PKCE S256, RFC 8707 `resource`). */
export function authorizationUrl(options: AuthorizationUrlOptions): string;
/**
 * `fetch` with a pre-check: refuses locally (nothing is sent) when the gateway would refuse,
 * with `InsufficientScopeError` for missing scopes and `ScopegateError` otherwise; turns a
 * 403 `insufficient_scope` from the server into `InsufficientScopeError`, and a 401
 * `insufficient_user_authentication` (step-up) into a `ScopegateError` with that code and
 * its `acrValues` / `maxAge`.
 */
export function scopedFetch(input: URL | string | Request, init: RequestInit | undefined, options: ScopedFetchOptions): Promise<Response>;
/**
 * Wraps an MCP SDK `OAuthClientProvider` so that the authorization request it redirects to
 * asks for the scopes already held plus the requested ones, minimised (SDK 1.32 asks for the
 * challenge's scope alone, dropping what the token held). Everything else is the provider's.
 */
export function withHeldScopes<P extends HeldScopesProvider>(provider: P, options?: WithHeldScopesOptions): P;
