// Browser test of the portal against a running node.
//
//   PORTAL_BASE_URL=http://127.0.0.1:18085 ADMIN_TOKEN=… node e2e/portal.e2e.mjs
//
// Optional: SCREENSHOT_DIR (default e2e-output/), CHROMIUM (default /usr/bin/chromium).
// Prints one line per step; exits 0 only when every step passed. On a failure it prints the
// step and the error, saves failure.png in SCREENSHOT_DIR and exits 1.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import * as OTPAuth from 'otpauth';
import { chromium } from 'playwright-core';

const BASE = (process.env.PORTAL_BASE_URL ?? '').replace(/\/+$/, '');
const ADMIN_TOKEN = process.env.ADMIN_TOKEN ?? '';
const SHOTS = resolve(process.env.SCREENSHOT_DIR || 'e2e-output/');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 15_000;

if (!BASE || !ADMIN_TOKEN) {
  console.error('usage: PORTAL_BASE_URL=http://host:port ADMIN_TOKEN=… node e2e/portal.e2e.mjs');
  process.exit(2);
}
mkdirSync(SHOTS, { recursive: true });

const run = randomBytes(4).toString('hex');
const email = `e2e-${run}@example.com`;
const password = `pw-${randomBytes(9).toString('base64url')}`;
const orgSlug = `e2e-org-${run}`;
const projectSlug = `e2e-${run}`;
const externalId = `user-${run}`;
const ORIGIN = 'https://app.example.com';

/** Filled in as the steps go. */
const s = { totpSecret: '', lastTotpStep: -1, clientId: '', clientKey: '', secretKey: '', accessToken: '', sessionId: '' };

let browser;
let page;
let stepNo = 0;
const pageProblems = [];

function fail(msg) {
  throw new Error(msg);
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

async function step(name, fn) {
  stepNo += 1;
  const t0 = Date.now();
  try {
    const detail = await fn();
    console.log(`ok ${stepNo} - ${name}${detail ? ` (${detail})` : ''} [${Date.now() - t0} ms]`);
  } catch (e) {
    console.log(`not ok ${stepNo} - ${name}`);
    console.error(`  error: ${e && e.stack ? e.stack : e}`);
    if (page) {
      const path = `${SHOTS}/failure.png`;
      await page.screenshot({ path, fullPage: true }).catch(() => {});
      console.error(`  screenshot: ${path}`);
      console.error(`  page url: ${page.url()}`);
    }
    if (pageProblems.length) console.error(`  page problems: ${pageProblems.join(' | ')}`);
    await browser?.close().catch(() => {});
    process.exit(1);
  }
}

async function shot(name, opts = {}) {
  await page.screenshot({ path: `${SHOTS}/${name}`, fullPage: true, ...opts });
}

/** A JSON call to the node from this process (not the browser). */
async function call(method, path, { headers = {}, body } = {}) {
  const res = await fetch(BASE + path, {
    method,
    headers: { ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

function totp() {
  return new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(s.totpSecret), algorithm: 'SHA1', digits: 6, period: 30 });
}

const timeStep = () => Math.floor(Date.now() / 30_000);

/** A code for a 30-s step later than the last one used (the server refuses replays). */
async function freshCode() {
  if (timeStep() <= s.lastTotpStep) {
    const wait = (s.lastTotpStep + 1) * 30_000 - Date.now() + 750;
    console.log(`  (waiting ${Math.ceil(wait / 1000)} s for the next TOTP step: the last one was used at confirm)`);
    await new Promise((r) => setTimeout(r, wait));
  }
  s.lastTotpStep = timeStep();
  return totp().generate();
}

/** Waits for the answer of `method path` (a path prefix) while `action` runs. */
async function answerOf(method, pathPrefix, action) {
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === method && new URL(r.url()).pathname.startsWith(pathPrefix), { timeout: TIMEOUT }),
    action(),
  ]);
  return res;
}

async function gotoHash(hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
}

await step('create an admin user through the API with ADMIN_TOKEN', async () => {
  const r = await call('POST', '/admin/v1/admin-users', {
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    body: { email, password },
  });
  check(r.status === 201, `POST /admin/v1/admin-users answered ${r.status}: ${r.text}`);
  check(r.json?.email === email && r.json?.totp_enabled === false, `unexpected body ${r.text}`);
  return email;
});

await step('log in with email and password', async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE }).catch(() => {});
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => pageProblems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) pageProblems.push(`CSP: ${m.text()}`);
  });
  await page.goto(`${BASE}/portal/`);
  await page.locator('#login-email').waitFor();
  check(!(await page.locator('#login-totp').isVisible()), 'the code field shows before the server asks for it');
  await page.fill('#login-email', email);
  await page.fill('#login-password', password);
  await shot('portal-login.png');
  const res = await answerOf('POST', '/admin/v1/auth/login', () => page.press('#login-password', 'Enter'));
  check(res.status() === 200, `login answered ${res.status()}`);
  await page.locator('#nav-projects').waitFor();
  await page.locator('h1', { hasText: 'Projects' }).waitFor();
  const who = await page.textContent('[data-testid="current-user"]');
  check(who === email, `header shows ${who}`);
});

await step('enrol TOTP on My account: QR, secret, confirm, ten recovery codes', async () => {
  await page.click('#nav-account');
  await page.locator('#totp-enroll').click();
  const secretEl = page.locator('[data-secret="totp-secret"]');
  await secretEl.waitFor();
  s.totpSecret = (await secretEl.textContent()).trim();
  check(/^[A-Z2-7]+=*$/.test(s.totpSecret), `secret is not base32: ${s.totpSecret}`);
  const qr = page.locator('img[alt="QR code for your authenticator app"]');
  await qr.waitFor();
  check((await qr.getAttribute('src')).startsWith('data:image/svg+xml;base64,'), 'QR is not an SVG data URL');
  const loaded = await qr.evaluate((img) => img.complete && img.naturalWidth > 0);
  check(loaded, 'the QR image did not load (CSP img-src?)');
  await shot('portal-totp.png');
  // A wrong code is refused (401 invalid_totp) and leaves the user logged in, on this page.
  const near = [-1, 0, 1].map((d) => totp().generate({ timestamp: Date.now() + d * 30_000 }));
  let wrong = 0;
  while (near.includes(String(wrong).padStart(6, '0'))) wrong += 1;
  const bad = await answerOf('POST', '/admin/v1/auth/totp/confirm', async () => {
    await page.fill('#totp-code', String(wrong).padStart(6, '0'));
    await page.click('#totp-confirm');
  });
  check(bad.status() === 401, `a wrong code answered ${bad.status()}, expected 401 invalid_totp`);
  await page.locator('#totp-confirm-form [role="alert"]', { hasText: 'invalid_totp' }).waitFor();
  check(await page.locator('#totp-code').isVisible(), 'a wrong code left the enrolment form');
  const code = await freshCode();
  const res = await answerOf('POST', '/admin/v1/auth/totp/confirm', async () => {
    await page.fill('#totp-code', code);
    await page.click('#totp-confirm');
  });
  check(res.status() === 200, `confirm answered ${res.status()}: ${await res.text()}`);
  await page.locator('#recovery-codes li').nth(9).waitFor();
  const n = await page.locator('#recovery-codes li').count();
  check(n === 10, `${n} recovery codes shown`);
  await shot('portal-recovery-codes.png');
  return `${n} recovery codes`;
});

await step('log out; log in again with a fresh TOTP code', async () => {
  await page.click('#logout');
  await page.locator('[data-testid="login-notice"]', { hasText: 'logged out' }).waitFor();
  await page.fill('#login-email', email);
  await page.fill('#login-password', password);
  const first = await answerOf('POST', '/admin/v1/auth/login', () => page.click('#login-submit'));
  check(first.status() === 403, `login without a code answered ${first.status()}, expected 403 totp_required`);
  await page.locator('#login-totp').waitFor({ state: 'visible' });
  await page.locator('[data-testid="totp-prompt"]').waitFor();
  const code = await freshCode();
  await page.fill('#login-totp', code);
  const second = await answerOf('POST', '/admin/v1/auth/login', () => page.press('#login-totp', 'Enter'));
  check(second.status() === 200, `login with the code answered ${second.status()}: ${await second.text()}`);
  await page.locator('#nav-projects').waitFor();
});

await step('create an organization and a project', async () => {
  await page.click('#nav-projects');
  await page.locator('#org-slug').waitFor();
  await page.fill('#org-slug', orgSlug);
  await page.fill('#org-name', `E2E org ${run}`);
  const org = await answerOf('POST', '/admin/v1/orgs', () => page.click('#org-create'));
  check(org.status() === 201, `create org answered ${org.status()}: ${await org.text()}`);
  await page.locator(`[data-testid="org-${orgSlug}"]`).waitFor();
  await page.selectOption('#project-org', orgSlug);
  await page.fill('#project-slug', projectSlug);
  await page.fill('#project-name', `E2E project ${run}`);
  const proj = await answerOf('POST', '/admin/v1/projects', () => page.click('#project-create'));
  check(proj.status() === 201, `create project answered ${proj.status()}: ${await proj.text()}`);
  await page.locator('#settings-form').waitFor();
  await page.click('#nav-projects');
  await page.locator(`[data-testid="project-link-${projectSlug}"]`).waitFor();
  await shot('portal-projects.png');
  return `${orgSlug} / ${projectSlug}`;
});

await step('create a public client for https://app.example.com with the signup scope', async () => {
  await page.click(`[data-testid="project-link-${projectSlug}"]`);
  await page.click('#tab-clients');
  await page.locator('#client-name').waitFor();
  await page.fill('#client-name', 'web');
  await page.fill('#client-origins', ORIGIN);
  for (const scope of ['signup', 'login', 'refresh', 'logout', 'me']) await page.setChecked(`#scope-end_users-${scope}`, true);
  const res = await answerOf('POST', `/admin/v1/projects/${projectSlug}/clients`, () => page.click('#client-create'));
  check(res.status() === 201, `create client answered ${res.status()}: ${await res.text()}`);
  await page.locator('[data-secret="client_key"]').waitFor();
  s.clientId = (await page.textContent('[data-secret="client_id"]')).trim();
  s.clientKey = (await page.textContent('[data-secret="client_key"]')).trim();
  check(s.clientId && s.clientKey, 'client id or key missing from the panel');
  await page.locator('[data-testid="clients-table"]', { hasText: s.clientId }).waitFor();
  await shot('portal-clients.png');
  return s.clientId;
});

await step('create a secret key restricted to 127.0.0.0/8', async () => {
  // SPEC §2: a key without allowed_cidrs or allowed_origins is refused (restrictions_required).
  await page.click('#tab-keys');
  await page.locator('#key-name').waitFor();
  await page.fill('#key-name', 'backend');
  await page.fill('#key-cidrs', '127.0.0.0/8');
  const res = await answerOf('POST', `/admin/v1/projects/${projectSlug}/api-keys`, () => page.click('#key-create'));
  check(res.status() === 201, `create key answered ${res.status()}: ${await res.text()}`);
  await page.locator('[data-secret="key"]').waitFor();
  s.secretKey = (await page.textContent('[data-secret="key"]')).trim();
  check(s.secretKey.length > 20, 'secret key missing from the panel');
  await page.locator('[data-testid="keys-table"]').waitFor();
  await shot('portal-secret-key.png');
});

await step('sign an end user up with curl (public client headers) and introspect: active', async () => {
  const out = execFileSync(
    'curl',
    [
      '-sS',
      '-X', 'POST', `${BASE}/${projectSlug}/v1/public/end-users/signup`,
      '-H', 'Content-Type: application/json',
      '-H', `Origin: ${ORIGIN}`,
      '-H', `X-Client-Id: ${s.clientId}`,
      '-H', `X-Client-Key: ${s.clientKey}`,
      '-d', JSON.stringify({ external_id: externalId, password: 'password123', device_id: 'iphone-15' }),
      '-w', '\n%{http_code}',
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  const nl = out.lastIndexOf('\n');
  const status = Number(out.slice(nl + 1));
  const body = JSON.parse(out.slice(0, nl));
  check(status === 201, `signup answered ${status}: ${out}`);
  s.accessToken = body.access_token ?? body.token;
  s.sessionId = body.session_id;
  check(s.accessToken && s.sessionId, `no token or session id in ${out}`);
  const r = await call('POST', `/${projectSlug}/v1/sessions/introspect`, { headers: { 'X-API-Key': s.secretKey }, body: { token: s.accessToken } });
  check(r.status === 200 && r.json?.active === true, `introspection before revocation: ${r.status} ${r.text}`);
  return `session ${s.sessionId}`;
});

await step('End users: look the user up, see one session, revoke it in the page', async () => {
  await page.click('#tab-end-users');
  await page.locator('#enduser-external-id').waitFor();
  await page.fill('#enduser-external-id', externalId);
  await page.press('#enduser-external-id', 'Enter');
  await page.locator('[data-testid="enduser-info"]', { hasText: externalId }).waitFor();
  const rows = page.locator('[data-testid="sessions-table"] tbody tr');
  await rows.first().waitFor();
  const n = await rows.count();
  check(n === 1, `${n} session rows, expected 1`);
  check((await rows.first().locator(`[data-session-id="${s.sessionId}"]`).count()) === 1, 'the session row is not the signup session');
  await shot('portal-end-user.png');
  const res = await answerOf('DELETE', `/admin/v1/projects/${projectSlug}/sessions/`, () => page.click(`[data-testid="revoke-session-${s.sessionId}"]`));
  check(res.status() === 200, `revoke answered ${res.status()}: ${await res.text()}`);
  await page.locator('[data-testid="sessions-table"]', { hasText: 'No live sessions' }).waitFor();
});

await step('introspect the token with the secret key: active false', async () => {
  const r = await call('POST', `/${projectSlug}/v1/sessions/introspect`, { headers: { 'X-API-Key': s.secretKey }, body: { token: s.accessToken } });
  check(r.status === 200, `introspection answered ${r.status}: ${r.text}`);
  check(r.json && r.json.active === false && Object.keys(r.json).length === 1, `expected {"active":false}, got ${r.text}`);
});

await step('the audit log lists the project creation', async () => {
  await page.click('#nav-audit');
  await page.locator('[data-testid="audit-table"]').waitFor();
  const row = page.locator('[data-testid="audit-table"] tr[data-action="create_project"]', { hasText: projectSlug });
  await row.first().waitFor();
  const text = await row.first().textContent();
  check(text.includes(email), `the create_project entry does not name ${email}: ${text}`);
  await shot('portal-audit.png');
});

await step('the project page on a phone (390×844)', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await gotoHash(`#/projects/${projectSlug}/settings`);
  await page.locator('#settings-form').waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `the page is ${overflow}px wider than the phone`);
  await shot('portal-phone.png', { fullPage: false });
});

await step('no CSP violation or script error in the page', async () => {
  check(pageProblems.length === 0, pageProblems.join(' | '));
});

await browser.close();
console.log(`all ${stepNo} steps passed; screenshots in ${SHOTS}`);
