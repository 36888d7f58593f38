// `scopegate` under vitest with no plugins and no configuration file (Node environment:
// the `node` condition picks the Node build). Run with `--globals` (describe, it, expect).
import { init, Policy, parseChallenges, ScopegateError } from 'scopegate';

describe('scopegate under vitest', () => {
  it('loads a policy and answers like the gateway', async () => {
    await init();
    const policy = Policy.fromJson({
      version: 1,
      realm: 'vitest',
      issuers: [{ issuer: 'https://idp', audiences: ['api'], algorithms: ['ES256'], jwks_uri: 'https://idp/jwks', jwks_cluster: 'idp' }],
      routes: [{ path: '/api/resources', methods: ['POST'], require: 'resource:write' }],
    });
    const answer = policy.check('POST', '/api/resources');
    expect(answer.status).toBe(401);
    expect(answer.challenge).toBe('Bearer realm="vitest"');
  });

  it('throws ScopegateError with a code', () => {
    expect(() => parseChallenges('Bearer realm="x')).toThrow(ScopegateError);
  });
});
