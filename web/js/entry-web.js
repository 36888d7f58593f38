// `scopegate` for browsers without a bundler (and Vite, which serves it as is): the
// WebAssembly module is fetched and compiled asynchronously by `await init()`, which must
// finish before anything else is called. Compiling synchronously is refused on the main
// thread by some browsers, so there is no synchronous variant.
import initWasm, * as raw from './scopegate_web.js';
import { createApi, ScopegateError } from '../api.js';

export { ScopegateError, InsufficientScopeError, ScopesNotGrantedError } from '../api.js';

let loading = null;
let loaded = false;

/**
 * Fetches and instantiates the module (once; later calls return the same promise).
 * `module` overrides where the `.wasm` comes from: a URL, a Response, bytes or a
 * WebAssembly.Module. By default it is `scopegate_web_bg.wasm` next to this file.
 */
export function init(module) {
  if (loading === null) {
    loading = initWasm(module === undefined ? undefined : { module_or_path: module }).then(
      () => {
        loaded = true;
      },
      (err) => {
        loading = null;
        throw err;
      },
    );
  }
  return loading;
}

function ready() {
  if (!loaded) {
    throw new ScopegateError('not_initialized', 'scopegate (web build): call and await init() first');
  }
}

export const {
  Policy, ScopeRules, decodeToken, scopesOf, parseChallenges, nextScopeRequest, normalizePath,
  isValidScope, assertScopesGranted, createPkce, authorizationUrl, scopedFetch, withHeldScopes,
} = createApi(raw, ready);
