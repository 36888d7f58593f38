// Serves the demo SPA on 127.0.0.1: its files, the npm package `scopegate` as built locally
// (under /scopegate/), the gateway's policy document (/policy.json, the very file Envoy
// loads) and the app's settings (/config.json). No dependencies, no build step.
//
// Usage: node serve.mjs --port 5173 --package target/npm/scopegate --policy target/demo/policy.json
//          --issuer http://127.0.0.1:9000 --api http://127.0.0.1:8080
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, extname, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '5173' },
    package: { type: 'string' },
    policy: { type: 'string' },
    issuer: { type: 'string', default: 'http://127.0.0.1:9000' },
    api: { type: 'string', default: 'http://127.0.0.1:8080' },
  },
});
if (!args.package || !args.policy) {
  console.error('serve.mjs: --package <dir of the built npm package> and --policy <policy.json> are required');
  process.exit(2);
}
const port = Number(args.port);
const origin = `http://127.0.0.1:${port}`;
const here = new URL('.', import.meta.url).pathname;
const packageDir = resolve(args.package);
const config = JSON.stringify({ issuer: args.issuer, api: args.api, clientId: 'scopegate-spa', redirectUri: `${origin}/` });

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};
const APP_FILES = { '/': 'index.html', '/app.js': 'app.js', '/app.css': 'app.css' };

/** The file behind a URL path, never outside the folders it serves. */
function fileFor(pathname) {
  if (APP_FILES[pathname]) return join(here, APP_FILES[pathname]);
  if (pathname === '/policy.json') return resolve(args.policy);
  if (pathname.startsWith('/scopegate/')) {
    const file = resolve(packageDir, `.${decodeURIComponent(pathname.slice('/scopegate'.length))}`);
    if (file.startsWith(packageDir + sep)) return file;
  }
  return null;
}

const server = createServer(async (req, res) => {
  const send = (status, type, body) => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed');
  let pathname;
  try {
    pathname = new URL(req.url, origin).pathname;
  } catch {
    return send(400, 'text/plain', 'bad request');
  }
  if (pathname === '/config.json') return send(200, TYPES['.json'], config);
  const file = fileFor(pathname);
  if (!file) return send(404, 'text/plain', 'not found');
  try {
    send(200, TYPES[extname(file)] ?? 'application/octet-stream', await readFile(file));
  } catch {
    send(404, 'text/plain', 'not found');
  }
});
server.listen(port, '127.0.0.1', () => console.log(`spa: ${origin}/ ready (IdP ${args.issuer}, API via ${args.api})`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
