// The user at the demo IdP (`examples/idp/idp.mjs`) for the end-to-end MCP clients, as a
// browser would be, without a browser: it follows redirects with fetch, keeps the IdP's
// cookies, signs in on the login page, ticks scopes on the consent page and stops at the
// loopback redirect to the client, whose code and state it returns. Shared by the clients on
// the TypeScript SDKs (mcp-client.mjs, mcp-client-v2.mjs); the Python client (mcp_client.py)
// does the same in Python.

/** The loopback redirect the IdP registered for its MCP clients; never fetched. */
export const REDIRECT_URI = 'http://127.0.0.1/callback';

/** The IdP's cookies for one user agent: name -> value (paths ignored: one origin, one user). */
class CookieJar {
  #cookies = new Map();

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      const expired = attributes.some((attribute) => {
        const [key, val = ''] = attribute.trim().split('=');
        return (/^max-age$/i.test(key) && Number(val) <= 0) || (/^expires$/i.test(key) && Date.parse(val) < Date.now());
      });
      if (expired || !value) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header() {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

/** The text of a page's body. */
const text = (html) =>
  html
    .replace(/^[\s\S]*<body>/, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

/**
 * The user at the IdP, as a browser would be: follows redirects, signs in on the login page,
 * ticks scopes on the consent page, and stops at the redirect to the client, whose code and
 * state it returns.
 */
export class User {
  #jar = new CookieJar();
  #consents = 0;

  /** `consents`: the list each consent page shown, and what was ticked, is pushed to. */
  constructor(name, declineAtFirst, consents) {
    this.name = name;
    this.declineAtFirst = new Set(declineAtFirst);
    this.consents = consents;
  }

  async authorize(authorizationUrl) {
    let url = authorizationUrl;
    let init = { method: 'GET' };
    for (let hop = 0; hop < 20; hop++) {
      if (url.startsWith(`${REDIRECT_URI}?`)) return new URL(url).searchParams;
      const response = await fetch(url, {
        ...init,
        redirect: 'manual',
        headers: { cookie: this.#jar.header(), ...init.headers },
      });
      this.#jar.store(response);
      if (response.status >= 300 && response.status < 400) {
        url = new URL(response.headers.get('location'), url).href;
        init = { method: 'GET' };
        continue;
      }
      const html = await response.text();
      const form = /<form method="post" action="([^"]+)"/.exec(html);
      if (!form) throw new Error(`the IdP answered ${response.status} at ${url}: ${text(html).slice(0, 300)}`);
      const action = new URL(form[1], url).href;
      let body;
      if (action.endsWith('/login')) {
        body = new URLSearchParams({ username: this.name, password: this.name });
      } else if (action.endsWith('/consent')) {
        const offered = [...html.matchAll(/name="scope" value="([^"]+)"/g)].map((m) => m[1]);
        const first = this.#consents++ === 0;
        const approved = offered.filter((scope) => !(first && this.declineAtFirst.has(scope)));
        this.consents.push({ offered, approved, page: text(html) });
        body = new URLSearchParams(approved.map((scope) => ['scope', scope]));
      } else {
        throw new Error(`an unexpected form at ${url}: ${action}`);
      }
      url = action;
      init = { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } };
    }
    throw new Error('more than 20 redirects at the IdP');
  }
}
