// The end-to-end story of the demo, in headless Chromium driven by Playwright: the IdP, Envoy
// with the scopegate filter, the API and the SPA are already running (the demo binary
// starts them: `demo --check`). Prints one `ok` / `not ok` line per step, then
// `e2e: N passed, M failed`, and saves screenshots. Exits 1 on any failure and stops its
// browser whatever happens (Playwright kills it by PID on close, and on exit).
//
// Usage: node story.mjs --spa http://127.0.0.1:5173 --screenshots tests/output/e2e
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: args } = parseArgs({
  options: {
    spa: { type: 'string', default: 'http://127.0.0.1:5173' },
    screenshots: { type: 'string', default: 'tests/output/e2e' },
  },
});
const spa = args.spa.replace(/\/$/, '');
const shots = resolve(args.screenshots);
mkdirSync(shots, { recursive: true });

let passed = 0;
let failed = 0;
const results = [];
function check(name, ok, detail = '') {
  results.push(ok);
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok' : 'not ok'} ${results.length} - ${name}${ok || !detail ? '' : `\n  # ${String(detail).split('\n').join('\n  # ')}`}`);
  return ok;
}

const STEP_TIMEOUT = 20_000;
let browser = null;
// A hung step must not hang the test command: everything stops after 150 s.
const backstop = setTimeout(async () => {
  console.log('not ok - the story did not finish in 150 s');
  await browser?.close().catch(() => {});
  process.exit(1);
}, 150_000);

/** The SPA's text of an element, once the app is ready. */
const text = (page, selector) => page.locator(selector).innerText({ timeout: STEP_TIMEOUT });
const row = (page, action) => page.locator(`tr[data-action="${action}"]`);

async function ready(page) {
  await page.waitForSelector('body[data-ready="true"]', { timeout: STEP_TIMEOUT });
}

async function signIn(page, user) {
  await page.goto(`${spa}/`);
  await ready(page);
  await page.click('#sign-in');
  await page.waitForSelector('#username', { timeout: STEP_TIMEOUT });
  await page.fill('#username', user);
  await page.fill('#password', user);
  await page.click('button[type="submit"]');
  await page.waitForURL(`${spa}/`, { timeout: STEP_TIMEOUT });
  await ready(page);
}

/**
 * Clicks *Ask for resource:write*: off to the IdP (no login, the session is there; consent
 * is the role rule) and back, until the SPA has sent the POST and shows the answer.
 */
async function askForWriteScope(page) {
  await row(page, 'create').locator('button').click();
  await page.waitForURL(`${spa}/`, { timeout: STEP_TIMEOUT });
  await ready(page);
  await page.waitForFunction(() => document.querySelector('#answer-request')?.textContent.startsWith('POST'), null, { timeout: STEP_TIMEOUT });
}

async function story() {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  console.log(`# ${browser.version()} (headless), SPA ${spa}/`);

  // Alice: the role resource-admin lets the IdP grant resource:write when she asks for it.
  const context = await browser.newContext({ viewport: { width: 1100, height: 1000 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (msg) => msg.type() === 'error' && consoleErrors.push(msg.text()));
  await signIn(page, 'alice');
  check('alice signs in (code + PKCE) and the SPA shows her', (await text(page, '#user')).includes('alice'));
  const firstScopes = await text(page, '#scopes');
  check('the first token holds read scopes only', firstScopes.includes('resource:read') && !firstScopes.includes('resource:write'), firstScopes);
  check('the pre-check allows reading', (await text(page, 'tr[data-action="list"] .verdict')) === 'allowed');
  const writeVerdict = await text(page, 'tr[data-action="create"] .verdict');
  check('the pre-check refuses writing: needs resource:write', writeVerdict.includes('needs resource:write'), writeVerdict);
  await page.screenshot({ path: join(shots, '1-alice-read-only.png'), fullPage: true });

  await row(page, 'list').locator('button').click();
  await page.waitForSelector('#answer:not([hidden])', { timeout: STEP_TIMEOUT });
  check('reading through Envoy: 200', (await text(page, '#answer-status')).startsWith('200'), await text(page, '#answer-status'));

  await askForWriteScope(page);
  const log = await text(page, '#log');
  check('the SPA asked the IdP for resource:write only then', log.includes('asking the IdP for "resource:write" only now'), log);
  check('the IdP granted it', log.includes('the IdP granted resource:write'), log);
  const writeStatus = await text(page, '#answer-status');
  check('the write through Envoy: 200', writeStatus.startsWith('200'), writeStatus);
  const body = await text(page, '#answer-body');
  check('the API saw the gateway forward alice and resource:write', body.includes('"alice"') && /x-scopegate-scopes[^\n]*\n?[^\n]*resource:write/.test(body), body);
  check('the pre-check now allows writing', (await text(page, 'tr[data-action="create"] .verdict')) === 'allowed');
  await page.screenshot({ path: join(shots, '2-alice-wrote.png'), fullPage: true });

  // Bob, in the same browser as a newcomer would (the IdP's session is alice's until bob
  // signs in): no role, so the IdP leaves resource:write out of his token; the gateway
  // says 403.
  await page.click('#sign-out');
  check('signing out forgets the token', (await text(page, '#user')) === 'Not signed in.');
  const bobPage = page;
  // The token of bob's refused write, for `scopegate explain` (demo --check runs it).
  let bobAuthorization = null;
  const onRequest = (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/api/resources') {
      bobAuthorization = request.headers().authorization ?? null;
    }
  };
  await signIn(bobPage, 'bob');
  bobPage.on('request', onRequest);
  check('bob signs in, not alice', (await text(bobPage, '#user')).includes('(bob)'), await text(bobPage, '#user'));
  check('bob signs in and holds read scopes', (await text(bobPage, '#scopes')).includes('resource:read'));
  await askForWriteScope(bobPage);
  const bobLog = await text(bobPage, '#log');
  check('the IdP did not grant bob resource:write', bobLog.includes('the IdP did not grant resource:write'), bobLog);
  const status = await text(bobPage, '#answer-status');
  check("the gateway's answer: 403", status.startsWith('403'), status);
  const challenge = await text(bobPage, '#answer-challenge');
  check(
    'the SPA shows the challenge: insufficient_scope, scope="resource:write"',
    challenge.startsWith('Bearer ') && challenge.includes('error="insufficient_scope"') && challenge.includes('scope="resource:write"'),
    challenge,
  );
  const explanation = await text(bobPage, '#explanation');
  check(
    'the SPA explains what is missing and why',
    explanation.includes('Missing scope: resource:write') && explanation.includes('roles (none)'),
    explanation,
  );
  await bobPage.screenshot({ path: join(shots, '3-bob-403.png'), fullPage: true });
  bobPage.off('request', onRequest);
  check("bob's refused write carried his token", Boolean(bobAuthorization?.startsWith('Bearer ')), bobAuthorization);
  if (bobAuthorization) writeFileSync(join(shots, 'bob-authorization.txt'), `${bobAuthorization}\n`);
  // Chromium logs every 4xx response as an error; bob's 403 is the one expected.
  const unexpected = consoleErrors.filter((m) => !m.includes('status of 403'));
  check('no other errors in the console', unexpected.length === 0 && consoleErrors.length === 1, consoleErrors.join('\n'));
  await context.close();
}

try {
  await story();
} catch (err) {
  check('the story ran to its end', false, err.stack ?? err);
} finally {
  clearTimeout(backstop);
  await browser?.close().catch(() => {});
}
console.log(`# screenshots in ${shots}`);
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
