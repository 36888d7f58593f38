// Serves the assembled package and page.js on 127.0.0.1, drives Debian's headless Chromium
// through chromedriver (WebDriver), prints TAP-like results and the time `await init()`
// takes in a fresh page. Every process it starts is stopped by its PID, whatever happens.
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, unlinkSync } from 'node:fs';
import { join, extname, normalize } from 'node:path';

const pkg = process.argv[2];
// Optional: a `vite build --base /vite/` of web/tests/vite, served under /vite/.
const viteDist = process.argv[3];
const root = process.env.SCOPEGATE_ROOT;
const here = new URL('.', import.meta.url).pathname;
const capabilities = JSON.parse(readFileSync(join(root, 'web/webdriver.json'), 'utf8'));
const chromedriver = process.env.CHROMEDRIVER ?? '/usr/bin/chromedriver';
const LOADS = 15;

const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.html': 'text/html' };
let apiHits = 0;
const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const send = (status, type, body, headers = {}) => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
    res.end(body);
  };
  if (url.pathname === '/') return send(200, 'text/html', '<!doctype html><script type="module" src="/page.js"></script>');
  if (url.pathname === '/page.js') return send(200, types['.js'], readFileSync(join(here, 'page.js')));
  if (url.pathname === '/policy.json') return send(200, types['.json'], readFileSync(join(root, 'examples/policy.json')));
  if (url.pathname === '/hits') return send(200, types['.json'], JSON.stringify({ count: apiHits }));
  if (url.pathname.startsWith('/api/')) {
    apiHits++;
    const challenge = 'Bearer realm="scopegate-demo", error="insufficient_scope", scope="resource:read order"';
    return send(403, types['.json'], '{"error":"insufficient_scope","scope":"resource:read order"}', { 'www-authenticate': challenge });
  }
  if (viteDist && url.pathname.startsWith('/vite/')) {
    const file = normalize(join(viteDist, url.pathname === '/vite/' ? 'index.html' : url.pathname.slice(6)));
    if (file.startsWith(viteDist) && existsSync(file)) return send(200, types[extname(file)] ?? 'application/octet-stream', readFileSync(file));
  }
  if (url.pathname.startsWith('/pkg/')) {
    const file = normalize(join(pkg, url.pathname.slice(5)));
    if (file.startsWith(pkg) && existsSync(file)) return send(200, types[extname(file)] ?? 'application/octet-stream', readFileSync(file));
  }
  send(404, 'text/plain', 'not found');
});

let driver = null;
const stop = () => {
  if (driver && driver.exitCode === null) process.kill(driver.pid);
  if (process.env.SCOPEGATE_PIDFILE && existsSync(process.env.SCOPEGATE_PIDFILE)) unlinkSync(process.env.SCOPEGATE_PIDFILE);
  server.close();
};
process.on('exit', stop);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(1));

const listen = (srv) => new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv.address().port)));
const freePort = async () => {
  const probe = createServer();
  const port = await listen(probe);
  await new Promise((resolve) => probe.close(resolve));
  return port;
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const port = await listen(server);
  const driverPort = await freePort();
  driver = spawn(chromedriver, [`--port=${driverPort}`, '--allowed-ips=127.0.0.1'], { stdio: 'ignore' });
  // For the calling script's trap, in case this process is killed before its exit handler runs.
  if (process.env.SCOPEGATE_PIDFILE) writeFileSync(process.env.SCOPEGATE_PIDFILE, `${driver.pid}\n`);
  const wd = async (method, path, body) => {
    const res = await fetch(`http://127.0.0.1:${driverPort}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${JSON.stringify(json.value)}`);
    return json.value;
  };
  for (let i = 0; ; i++) {
    try {
      if ((await wd('GET', '/status')).ready) break;
    } catch {
      // not listening yet
    }
    if (i > 100) throw new Error('chromedriver did not start');
    await sleep(100);
  }
  const session = await wd('POST', '/session', { capabilities: { alwaysMatch: { browserName: 'chrome', ...capabilities } } });
  const id = session.sessionId;
  try {
    const timings = [];
    const fetches = [];
    const compiles = [];
    const freshCompiles = [];
    const afters = [];
    let first = null;
    for (let load = 0; load < LOADS; load++) {
      await wd('POST', `/session/${id}/url`, { url: `http://127.0.0.1:${port}/?load=${load}` });
      let outcome = null;
      for (let i = 0; i < 200 && outcome === null; i++) {
        outcome = await wd('POST', `/session/${id}/execute/sync`, { script: 'return window.__results ?? null', args: [] });
        if (outcome === null) await sleep(50);
      }
      if (outcome === null) throw new Error('the page did not finish');
      timings.push(outcome.initMs);
      fetches.push(outcome.fetchMs);
      compiles.push(outcome.compileMs);
      freshCompiles.push(outcome.freshCompileMs);
      afters.push(outcome.afterFetchMs);
      first ??= outcome;
    }
    if (viteDist) {
      await wd('POST', `/session/${id}/url`, { url: `http://127.0.0.1:${port}/vite/` });
      let vite = null;
      for (let i = 0; i < 200 && vite === null; i++) {
        vite = await wd('POST', `/session/${id}/execute/sync`, { script: 'return window.__vite ?? null', args: [] });
        if (vite === null) await sleep(50);
      }
      const ok = vite !== null && vite.status === 401 && vite.challenge === 'Bearer realm="vite"';
      first.results.push({ name: 'the SPA built by Vite (no plugins) initialises and answers', ok, error: JSON.stringify(vite) });
    }
    let failed = 0;
    first.results.forEach((r, i) => {
      console.log(`${r.ok ? 'ok' : 'not ok'} ${i + 1} - ${r.name}`);
      if (!r.ok) {
        failed++;
        console.log(`  # ${r.error.split('\n').join('\n  # ')}`);
      }
    });
    const sorted = [...timings].sort((a, b) => a - b);
    console.log(`# ${first.userAgent.match(/Chrome\/[\d.]+/)?.[0] ?? first.userAgent}`);
    console.log(`# init() in a fresh page: first ${timings[0].toFixed(1)} ms, median of ${LOADS} ${sorted[Math.floor(LOADS / 2)].toFixed(1)} ms (fetch + compile + instantiate, 127.0.0.1)`);
    const fetchSorted = [...fetches].sort((a, b) => a - b);
    console.log(`# of which the .wasm fetch: first ${fetches[0].toFixed(1)} ms, median ${fetchSorted[Math.floor(LOADS / 2)].toFixed(1)} ms`);
    const compileSorted = [...compiles].sort((a, b) => a - b);
    const afterSorted = [...afters].sort((a, b) => a - b);
    console.log(`# after its last byte (compile, instantiate, start): median ${afterSorted[Math.floor(LOADS / 2)].toFixed(1)} ms`);
    console.log(`# WebAssembly.compile of the same bytes alone (no fetch): median ${compileSorted[Math.floor(LOADS / 2)].toFixed(1)} ms`);
    const freshSorted = [...freshCompiles].sort((a, b) => a - b);
    console.log(`# the same with a random custom section appended (bytes no cache holds): median ${freshSorted[Math.floor(LOADS / 2)].toFixed(1)} ms`);
    console.log(`# pass ${first.results.length - failed}`);
    console.log(`# fail ${failed}`);
    if (failed > 0) process.exitCode = 1;
  } finally {
    await wd('DELETE', `/session/${id}`).catch(() => {});
  }
}

main().then(
  () => process.exit(),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
