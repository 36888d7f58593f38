// A minimal SPA entry built by `vite build` with no plugins and no configuration: the
// `browser` condition picks the web build, whose `.wasm` Vite emits as an asset.
import { init, Policy } from 'scopegate';

const policy = {
  version: 1,
  realm: 'vite',
  issuers: [{ issuer: 'https://idp', audiences: ['api'], algorithms: ['ES256'], jwks_uri: 'https://idp/jwks', jwks_cluster: 'idp' }],
  routes: [{ path: '/api/resources', methods: ['POST'], require: 'resource:write' }],
};

try {
  await init();
  const answer = Policy.fromJson(policy).check('POST', '/api/resources');
  window.__vite = { status: answer.status, challenge: answer.challenge };
} catch (err) {
  window.__vite = { error: `${err}` };
}
