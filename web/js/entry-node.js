// `scopegate` for Node (18+): the module is compiled synchronously when imported.
import * as raw from './scopegate_web.cjs';
import { createApi } from '../api.js';

export { ScopegateError, InsufficientScopeError, ScopesNotGrantedError } from '../api.js';

/** Nothing to wait for in this build; present so that code runs unchanged on every build. */
export async function init() {}

export const {
  Policy, ScopeRules, decodeToken, scopesOf, parseChallenges, nextScopeRequest, normalizePath,
  isValidScope, assertScopesGranted, createPkce, authorizationUrl, scopedFetch, withHeldScopes,
} = createApi(raw);
