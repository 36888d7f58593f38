// The public API of the npm package `scopegate`, over the raw wasm-bindgen exports of the
// `scopegate-web` crate. Every decision about scopes, tokens, routes and status codes is
// made by the Rust core; this layer converts JS values, turns the core's errors into
// `ScopegateError` objects, and adds what belongs to the platform: Web Crypto for PKCE,
// `URL` for the authorization request, and `fetch`.
//
// No signature is ever verified here: tokens are decoded and pre-checked as the gateway
// would decide them if their signature is valid. The gateway verifies signatures.

/** An error with a stable, machine-readable `code`. */
export class ScopegateError extends Error {
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'ScopegateError';
    this.code = code;
    Object.assign(this, details);
  }
}

/**
 * The request needs scopes the token does not hold: found by the local pre-check (nothing
 * was sent) or answered by the server with 403 `insufficient_scope`.
 */
export class InsufficientScopeError extends ScopegateError {
  constructor(message, details) {
    super('insufficient_scope', message, details);
    this.name = 'InsufficientScopeError';
  }
}

/** A token came back from the authorization server without every scope that was asked for. */
export class ScopesNotGrantedError extends ScopegateError {
  constructor(message, details) {
    super('scopes_not_granted', message, details);
    this.name = 'ScopesNotGrantedError';
  }
}

function invalidArgument(message) {
  return new ScopegateError('invalid_argument', message);
}

/** Runs a raw call, turning the core's JSON error text into a ScopegateError. */
function call(fn) {
  try {
    return fn();
  } catch (err) {
    if (typeof err === 'string' && err.startsWith('{')) {
      const { code, message, ...details } = JSON.parse(err);
      return raise(new ScopegateError(code, message, details));
    }
    throw err;
  }
}

function raise(err) {
  throw err;
}

function requireString(value, name) {
  if (typeof value !== 'string') {
    throw invalidArgument(`${name} must be a string, got ${value === null ? 'null' : typeof value}`);
  }
  return value;
}

/** Seconds since 1970 from a Date, a number of seconds, or the clock. */
function seconds(now) {
  if (now === undefined || now === null) return Math.floor(Date.now() / 1000);
  if (now instanceof Date) {
    const ms = now.getTime();
    if (Number.isFinite(ms) && ms >= 0) return Math.floor(ms / 1000);
  } else if (typeof now === 'number' && Number.isFinite(now) && now >= 0) {
    return Math.floor(now);
  }
  throw invalidArgument('now must be a Date or a non-negative number of seconds since 1970');
}

function base64url(bytes) {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function webCrypto() {
  const crypto = globalThis.crypto;
  if (!crypto || !crypto.subtle || !crypto.getRandomValues) {
    throw new ScopegateError(
      'crypto_unavailable',
      'Web Crypto is not available (it needs a secure context: https or localhost)',
    );
  }
  return crypto;
}

/**
 * Builds the public API over one build's raw exports. `ready` throws when that build
 * cannot be used yet (the web build before `init()`).
 */
export function createApi(raw, ready = () => {}) {
  /** A list of scopes (or other `items`) from an array or a space-separated string (split by the core). */
  function scopeList(value, name, items = 'scopes') {
    if (typeof value === 'string') return raw.splitScopes(value);
    if (Array.isArray(value) && value.every((s) => typeof s === 'string')) return [...value];
    throw invalidArgument(`${name} must be an array of ${items} or a space-separated string`);
  }

  // The raw objects behind a ScopeRules and a Policy, for this module only.
  let rawRules;
  let rawPolicy;

  class ScopeRules {
    #raw;

    static {
      rawRules = (rules) => rules.#raw;
    }

    constructor(options = {}) {
      if (options === null || typeof options !== 'object') {
        throw invalidArgument('ScopeRules takes {separator, writeSuffix, prefixes}');
      }
      if (options instanceof raw.RawScopeRules) {
        this.#raw = options;
        return;
      }
      ready();
      const { separator, writeSuffix, prefixes = [] } = options;
      if (separator !== undefined) requireString(separator, 'separator');
      if (writeSuffix !== undefined && writeSuffix !== null) requireString(writeSuffix, 'writeSuffix');
      this.#raw = call(
        () =>
          new raw.RawScopeRules(separator, writeSuffix ?? undefined, writeSuffix === null, scopeList(prefixes, 'prefixes')),
      );
    }

    /** Does the granted scope satisfy a requirement for `required`? */
    covers(granted, required) {
      return this.#raw.covers(requireString(granted, 'granted'), requireString(required, 'required'));
    }

    /** The next progressive request: `{add, scope}`. */
    nextRequest(held, missing) {
      const text = call(() => this.#raw.nextRequest(scopeList(held, 'held'), scopeList(missing, 'missing')));
      return JSON.parse(text);
    }
  }

  class Policy {
    #raw;
    #rules;

    static {
      rawPolicy = (policy) => policy.#raw;
    }

    constructor(token, rawPolicy) {
      if (token !== constructing) throw invalidArgument('use Policy.fromJson(text) to load a policy');
      this.#raw = rawPolicy;
      this.#rules = new ScopeRules(rawPolicy.scopeRules());
    }

    /** Loads and compiles a policy document (JSON text, or the parsed object). */
    static fromJson(text) {
      ready();
      const json = typeof text === 'string' ? text : text !== null && typeof text === 'object' ? JSON.stringify(text) : null;
      if (json === null) throw invalidArgument('Policy.fromJson takes the policy document as JSON text or an object');
      return new Policy(constructing, call(() => raw.RawPolicy.fromJson(json)));
    }

    /** The realm of the gateway's challenges. */
    get realm() {
      return this.#raw.realm();
    }

    /** The RFC 9728 protected resource metadata, when the policy names a `resource`. */
    get resourceMetadata() {
      const text = this.#raw.resourceMetadata();
      return text === undefined || text === null ? null : JSON.parse(text);
    }

    /** The policy's scope rules (separator, write suffix, prefix scopes). */
    get scopeRules() {
      return this.#rules;
    }

    /** The gateway's answer for `method url` carrying `jwt`, assuming a valid signature. */
    check(method, url, jwt, now) {
      const header = raw.authorizationHeader(jwt === undefined || jwt === null ? '' : requireString(jwt, 'jwt'));
      return this.checkRequest({ method, url, authorization: header === undefined ? [] : [header] }, now);
    }

    /** The gateway's answer for a request with every header it looks at. */
    checkRequest(request, now) {
      if (request === null || typeof request !== 'object') throw invalidArgument('checkRequest takes a request object');
      const { method, url, authorization = [], origin, accessControlRequestMethod, body, mcpMethod, mcpName, mcpProtocolVersion } = request;
      requireString(method, 'method');
      requireString(url, 'url');
      const values = typeof authorization === 'string' ? [authorization] : authorization;
      if (!Array.isArray(values) || !values.every((v) => typeof v === 'string')) {
        throw invalidArgument('authorization must be a header value or an array of them');
      }
      if (origin !== undefined && origin !== null) requireString(origin, 'origin');
      if (accessControlRequestMethod !== undefined && accessControlRequestMethod !== null) {
        requireString(accessControlRequestMethod, 'accessControlRequestMethod');
      }
      for (const [value, name] of [
        [body, 'body'],
        [mcpMethod, 'mcpMethod'],
        [mcpName, 'mcpName'],
        [mcpProtocolVersion, 'mcpProtocolVersion'],
      ]) {
        if (value !== undefined && value !== null) requireString(value, name);
      }
      const at = seconds(now);
      const text = call(() =>
        this.#raw.check(
          method,
          url,
          values,
          origin ?? undefined,
          accessControlRequestMethod ?? undefined,
          body ?? undefined,
          mcpMethod ?? undefined,
          mcpName ?? undefined,
          mcpProtocolVersion ?? undefined,
          at,
        ),
      );
      return JSON.parse(text);
    }

    /** The token's effective scopes under this policy: scope claims plus mapped roles. */
    scopesOf(jwt) {
      requireString(jwt, 'jwt');
      return call(() => this.#raw.scopesOf(jwt));
    }

    /** The next progressive request under this policy's scope rules. */
    nextScopeRequest(held, missing) {
      return this.#rules.nextRequest(held, missing);
    }

    /** Does the granted scope satisfy a requirement for `required` under this policy? */
    covers(granted, required) {
      return this.#rules.covers(granted, required);
    }

    /**
     * For an MCP client: which tools, prompts and resources the token can use at the MCP
     * endpoint `url`, each decided by the core as a `tools/call`, `prompts/get` or
     * `resources/read` request POSTed there, with the scope request to make when it cannot.
     */
    mcpAccess(request, now) {
      if (request === null || typeof request !== 'object') throw invalidArgument('mcpAccess takes {url, token, tools, prompts, resources}');
      const { url, token, tools = [], prompts = [], resources = [] } = request;
      const target = mcpUrl(url);
      const at = seconds(now);
      const access = tokenOf(token);
      const each = (list, listName, method, key) => {
        if (!Array.isArray(list)) throw invalidArgument(`${listName} must be an array`);
        return list.map((item, index) => {
          const value = typeof item === 'string' ? item : item !== null && typeof item === 'object' ? item[key] : undefined;
          if (typeof value !== 'string') {
            throw invalidArgument(`${listName}[${index}] must be a ${key} or an object with a string ${key}`);
          }
          return { [key]: value, ...this.#mcpCall(target, access, method, { [key]: value }, at) };
        });
      };
      return {
        tools: each(tools, 'tools', 'tools/call', 'name'),
        prompts: each(prompts, 'prompts', 'prompts/get', 'name'),
        resources: each(resources, 'resources', 'resources/read', 'uri'),
      };
    }

    /**
     * For one MCP call: does the token allow it, and if not, the whole `scope` parameter to
     * ask for (held plus needed, minimised; nothing held is dropped).
     */
    mcpScopeRequest(request, now) {
      if (request === null || typeof request !== 'object') throw invalidArgument('mcpScopeRequest takes {url, token, method, name, uri}');
      const { url, token, method, name, uri } = request;
      requireString(method, 'method');
      const params = {};
      if (name !== undefined && name !== null) params.name = requireString(name, 'name');
      if (uri !== undefined && uri !== null) params.uri = requireString(uri, 'uri');
      return this.#mcpCall(mcpUrl(url), tokenOf(token), method, params, seconds(now));
    }

    /** The core's answer for one JSON-RPC call, and the scope request that would allow it. */
    #mcpCall(url, token, method, params, at) {
      const { name, uri } = params;
      return JSON.parse(call(() => this.#raw.mcpCall(url, token.granted, token.access ?? undefined, method, name, uri, at)));
    }

    /** Frees the compiled policy now instead of when it is garbage-collected. */
    free() {
      this.#raw.free();
    }
  }
  const constructing = Symbol('Policy');

  function mcpUrl(url) {
    if (url instanceof URL) return url.href;
    return requireString(url, 'url');
  }

  /** `{access, granted}` from an access token or the SDK's `OAuthTokens` (`{access_token, scope}`). */
  function tokenOf(token) {
    if (token === undefined || token === null) return { access: null, granted: [] };
    if (typeof token === 'string') return { access: token, granted: [] };
    if (typeof token === 'object') {
      const { access_token: access, scope } = token;
      if (access !== undefined && access !== null) requireString(access, 'token.access_token');
      if (scope !== undefined && scope !== null) requireString(scope, 'token.scope');
      return { access: access ?? null, granted: scope ? scopeList(scope, 'token.scope') : [] };
    }
    throw invalidArgument('token must be an access token or an object with access_token (the SDK\'s OAuthTokens)');
  }

  /**
   * The scopes held, as the core counts them: the token response's `scope` and the access
   * token's scopes (under `policy` when given; none at `url` for a token the gateway there
   * refuses as not its own).
   */
  function heldScopes(token, policy, url) {
    const access = token.access ?? undefined;
    if (!policy) return raw.heldScopes(token.granted, access);
    return call(() => rawPolicy(policy).heldScopes(token.granted, access, url ?? undefined, seconds()));
  }

  /**
   * Wraps an OAuth client provider of the MCP TypeScript SDK (`OAuthClientProvider`) so that
   * the authorization request it redirects to asks for the scopes already held as well as
   * the requested ones (the SDK asks for the challenge's scope alone). Everything else is
   * the wrapped provider's.
   */
  function withHeldScopes(provider, options = {}) {
    ready();
    if (provider === null || (typeof provider !== 'object' && typeof provider !== 'function')) {
      throw invalidArgument('withHeldScopes takes an OAuthClientProvider');
    }
    for (const name of ['tokens', 'redirectToAuthorization']) {
      if (typeof provider[name] !== 'function') throw invalidArgument(`the provider has no ${name}() method`);
    }
    if (options === null || typeof options !== 'object') throw invalidArgument('withHeldScopes takes {policy, rules, url}');
    const { policy, rules, url } = options;
    if (policy !== undefined && policy !== null && !(policy instanceof Policy)) {
      throw invalidArgument('options.policy must be a Policy from Policy.fromJson');
    }
    const endpoint = url === undefined || url === null ? null : mcpUrl(url);
    if (endpoint !== null && !policy) throw invalidArgument('options.url needs options.policy to read the token with');
    const scopeRules = rulesOf(rules ?? policy);

    async function redirectToAuthorization(authorizationUrl) {
      const target = authorizationUrl instanceof URL ? authorizationUrl : new URL(String(authorizationUrl));
      const requested = scopeList(target.searchParams.get('scope') ?? '', 'the scope parameter');
      const holding = heldScopes(tokenOf((await provider.tokens()) ?? null), policy, endpoint);
      const prompt = target.searchParams.get('prompt') ?? '';
      const widened = call(() => rawRules(scopeRules).widen(holding, requested, prompt));
      if (widened !== undefined) {
        const next = JSON.parse(widened);
        target.searchParams.set('scope', next.scope);
        if (next.prompt !== null) target.searchParams.set('prompt', next.prompt);
      }
      return provider.redirectToAuthorization(target);
    }

    // A proxy over an empty object, not over the provider, so that a frozen provider keeps
    // the proxy's invariants; getters and methods run on the provider itself (classes with
    // private fields work).
    const own = (name) => name === 'redirectToAuthorization';
    return new Proxy(Object.create(null), {
      get(_, name) {
        if (own(name)) return redirectToAuthorization;
        const value = Reflect.get(provider, name, provider);
        return typeof value === 'function' ? value.bind(provider) : value;
      },
      has: (_, name) => own(name) || Reflect.has(provider, name),
      set: (_, name, value) => Reflect.set(provider, name, value, provider),
      deleteProperty: (_, name) => Reflect.deleteProperty(provider, name),
      ownKeys: () => Reflect.ownKeys(provider),
      getOwnPropertyDescriptor(_, name) {
        const descriptor = Reflect.getOwnPropertyDescriptor(provider, name);
        if (descriptor === undefined) return undefined;
        if (own(name) && 'value' in descriptor) descriptor.value = redirectToAuthorization;
        return { ...descriptor, configurable: true };
      },
      defineProperty: (_, name, descriptor) => Reflect.defineProperty(provider, name, descriptor),
      getPrototypeOf: () => Reflect.getPrototypeOf(provider),
    });
  }

  function rulesOf(rules) {
    if (rules === undefined || rules === null) return new ScopeRules();
    if (rules instanceof Policy) return rules.scopeRules;
    if (rules instanceof ScopeRules) return rules;
    return new ScopeRules(rules);
  }

  function decodeToken(jwt) {
    ready();
    requireString(jwt, 'jwt');
    return JSON.parse(call(() => raw.decodeToken(jwt)));
  }

  function scopesOf(jwt, policy) {
    ready();
    if (policy !== undefined && policy !== null) {
      if (!(policy instanceof Policy)) throw invalidArgument('policy must be a Policy from Policy.fromJson');
      return policy.scopesOf(jwt);
    }
    requireString(jwt, 'jwt');
    return call(() => raw.scopesOf(jwt));
  }

  function parseChallenges(value) {
    ready();
    requireString(value, 'wwwAuthenticate');
    const list = JSON.parse(call(() => raw.parseChallenges(value)));
    return list.map(({ scheme, token68, params }) => {
      const byName = {};
      for (const [name, val] of params) if (!(name in byName)) byName[name] = val;
      return { scheme, token68: token68 ?? null, params: byName, paramList: params };
    });
  }

  function nextScopeRequest(held, missing, rules) {
    ready();
    return rulesOf(rules).nextRequest(held, missing);
  }

  function normalizePath(target) {
    ready();
    return call(() => raw.normalizePath(requireString(target, 'target')));
  }

  function isValidScope(scope) {
    ready();
    return typeof scope === 'string' && raw.isValidScope(scope);
  }

  function assertScopesGranted(requested, jwt, policy) {
    const held = scopesOf(jwt, policy);
    const next = nextScopeRequest(held, scopeList(requested, 'requested'), policy);
    if (next.add.length > 0) {
      throw new ScopesNotGrantedError(
        `the token was issued without ${next.add.join(' ')}: the user or the authorization server declined them`,
        { notGranted: next.add, granted: held },
      );
    }
    return held;
  }

  async function createPkce() {
    const crypto = webCrypto();
    const codeVerifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(codeVerifier));
    return { codeVerifier, codeChallenge: base64url(new Uint8Array(digest)), codeChallengeMethod: 'S256' };
  }

  function absoluteUrl(value, name) {
    requireString(value, name);
    try {
      return new URL(value);
    } catch {
      throw invalidArgument(`${name} must be an absolute URL, got ${JSON.stringify(value)}`);
    }
  }

  /** The endpoint's URL with the query parameters the core decides. */
  function authorizationUrl(options) {
    ready();
    if (options === null || typeof options !== 'object') throw invalidArgument('authorizationUrl takes an options object');
    const {
      authorizationEndpoint, clientId, redirectUri, scopes, state, codeChallenge,
      codeChallengeMethod, resource, responseType, extraParams = {}, acrValues, maxAge,
    } = options;
    const url = absoluteUrl(authorizationEndpoint, 'authorizationEndpoint');
    const optional = (value, name) => (value === undefined ? undefined : requireString(value, name));
    const resources = resource === undefined ? [] : Array.isArray(resource) ? resource : [resource];
    if (maxAge !== undefined && typeof maxAge !== 'number') throw invalidArgument('maxAge must be a number of seconds');
    if (extraParams === null || typeof extraParams !== 'object') throw invalidArgument('extraParams must be an object of strings');
    const request = {
      authorization_endpoint: authorizationEndpoint,
      response_type: optional(responseType, 'responseType'),
      client_id: requireString(clientId, 'clientId'),
      redirect_uri: requireString(redirectUri, 'redirectUri'),
      scopes: scopeList(scopes, 'scopes'),
      state: optional(state, 'state'),
      code_challenge: requireString(codeChallenge, 'codeChallenge'),
      code_challenge_method: optional(codeChallengeMethod, 'codeChallengeMethod'),
      resources: resources.map((r) => requireString(r, 'resource')),
      acr_values: acrValues === undefined ? undefined : scopeList(acrValues, 'acrValues', 'authentication context classes'),
      extra: Object.entries(extraParams).flatMap(([name, value]) => [name, requireString(value, `extraParams.${name}`)]),
    };
    const params = call(() => raw.authorizationParams(JSON.stringify(request), maxAge));
    // Each replaces the endpoint's own parameters of its name; `resource` may repeat.
    for (let i = 0; i < params.length; i += 2) url.searchParams.delete(params[i]);
    for (let i = 0; i < params.length; i += 2) url.searchParams.append(params[i], params[i + 1]);
    return url.toString();
  }

  /** What a gateway's denial says (the core reads the header, or the JSON body when CORS hides it). */
  async function denialOf(response) {
    const header = response.headers.get('WWW-Authenticate') ?? undefined;
    let body;
    if (raw.wantsDenialBody(response.status, response.headers.get('Content-Type') ?? '')) {
      try {
        body = await response.clone().text();
      } catch {
        // An unreadable body: the header alone decides.
      }
    }
    const text = raw.readDenial(response.status, header, body);
    return text === undefined ? null : JSON.parse(text);
  }

  /**
   * The error for a 403 `insufficient_scope`: `required` is every scope the request needs
   * (the challenge's `scope`), `missing` those the token lacks when known (the pre-check,
   * or the gateway's JSON body), else worked out from what the token holds.
   */
  function insufficientScope(policy, token, required, missing, details) {
    const held = heldScopes({ access: token, granted: [] }, policy);
    const text = call(() => rawRules(policy.scopeRules).needed(held, required, missing ?? [], missing != null));
    const { scopeRequest, missing: lacking } = JSON.parse(text);
    const what = scopeRequest !== null ? `scope ${lacking.join(' ')}` : 'a route the policy does not configure';
    const where = details.source === 'precheck' ? 'refused before sending' : 'refused by the server';
    return new InsufficientScopeError(`${details.method} ${details.url} needs ${what} (${where})`, {
      required,
      missing: lacking,
      scopeRequest,
      held,
      ...details,
    });
  }

  async function scopedFetch(input, init, options) {
    ready();
    if (options === null || typeof options !== 'object') throw invalidArgument('scopedFetch takes {policy, getToken}');
    const { policy, getToken, now } = options;
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (!(policy instanceof Policy)) throw invalidArgument('options.policy must be a Policy from Policy.fromJson');
    if (typeof getToken !== 'function') throw invalidArgument('options.getToken must be a function');
    if (typeof fetchImpl !== 'function') throw invalidArgument('no fetch implementation');
    const request = new Request(input, init);
    const token = (await getToken()) ?? null;
    const header = raw.authorizationHeader(token === null ? '' : requireString(token, 'the token from getToken()'));
    if (header !== undefined) request.headers.set('Authorization', header);
    const origin = request.headers.get('Origin') ?? undefined;
    const check = policy.checkRequest(
      { method: request.method, url: request.url, authorization: request.headers.has('Authorization') ? [request.headers.get('Authorization')] : [], origin },
      now,
    );
    const base = { method: request.method, url: request.url, status: check.status, challenge: check.challenge, check };
    if (!check.allowed) {
      const text = call(() => raw.readDenial(check.status, check.challenge, check.body));
      const denial = text === undefined ? null : JSON.parse(text);
      if (denial?.fix === 'scopes') {
        throw insufficientScope(policy, token, check.required, check.missing, { ...base, source: 'precheck' });
      }
      throw new ScopegateError(
        check.error,
        `${request.method} ${request.url} would be refused with ${check.status} ${check.error} (refused before sending)`,
        { ...base, ...stepUp(denial), source: 'precheck' },
      );
    }
    const response = await fetchImpl(request);
    const denial = await denialOf(response);
    if (denial?.fix === 'scopes') {
      // The challenge names every scope the request needs; the body, when readable, says
      // which are missing. nextScopeRequest keeps only what the token does not cover.
      throw insufficientScope(policy, token, denial.insufficientScope, denial.missing, {
        ...base,
        status: response.status,
        challenge: response.headers.get('WWW-Authenticate'),
        source: 'server',
        response,
      });
    }
    if (denial?.fix === 'sign_in') {
      throw new ScopegateError(
        denial.error,
        `${request.method} ${request.url} needs a new sign-in (step-up; refused by the server)`,
        {
          ...base,
          ...stepUp(denial),
          status: response.status,
          challenge: response.headers.get('WWW-Authenticate'),
          source: 'server',
          response,
        },
      );
    }
    return response;
  }

  /** The RFC 9470 parameters of a step-up denial, for `authorizationUrl`. */
  function stepUp(denial) {
    const details = {};
    if (denial !== null && denial.acrValues !== null && denial.acrValues !== undefined) details.acrValues = denial.acrValues;
    if (denial !== null && denial.maxAge !== null && denial.maxAge !== undefined) details.maxAge = denial.maxAge;
    return details;
  }

  return {
    Policy,
    ScopeRules,
    decodeToken,
    scopesOf,
    parseChallenges,
    nextScopeRequest,
    normalizePath,
    isValidScope,
    assertScopesGranted,
    createPkce,
    authorizationUrl,
    scopedFetch,
    withHeldScopes,
  };
}
