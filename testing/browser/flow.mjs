// Drives a real headless Chromium (Debian's /usr/bin/chromium, through playwright-core)
// through the app behind the front at <front-url>: login at the test IdP, /user on
// every replica, Refresh, Logout, and /user after logout. Prints one line,
// `RESULT <json>`, with what the browser saw; the Rust test (testing/e2e/tests/browser.rs)
// asserts on it. Progress goes to stderr. Exit status 0 when the walk completed, 1 when
// a step failed (the JSON then has `error` and `step`).
//
//   node testing/browser/flow.mjs <front-url> [--replicas N] [--user NAME]
//        [--screenshots DIR] [--scope SCOPE]
//
// With --screenshots, DIR gets home.png (the start page) and user.png (/user
// after login), or failure.png when a step fails.
//
// Environment: CHROMIUM (default /usr/bin/chromium).

import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

function parseArgs(argv) {
  const opts = { replicas: 2, user: 'alice', screenshots: null, scope: 'openid profile offline_access' };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--replicas') opts.replicas = Number(value());
    else if (a === '--user') opts.user = value();
    else if (a === '--screenshots') opts.screenshots = value();
    else if (a === '--scope') opts.scope = value();
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else rest.push(a);
  }
  if (rest.length !== 1) usage('one front URL is required');
  if (!Number.isInteger(opts.replicas) || opts.replicas < 1) usage('--replicas must be a positive integer');
  opts.front = rest[0].replace(/\/+$/, '');
  return opts;
}

function usage(message) {
  console.error(`flow.mjs: ${message}\nusage: node flow.mjs <front-url> [--replicas N] [--user NAME] [--screenshots DIR] [--scope SCOPE]`);
  process.exit(2);
}

const log = (...args) => console.error('flow:', ...args);

const opts = parseArgs(process.argv.slice(2));
const front = new URL(opts.front);
const SESSION = 'oidc_session';
const LOGIN = 'oidc_login';

// What the browser saw; printed at the end whatever happens.
const result = {
  front: opts.front,
  chromium: null,
  steps: [],
  pods_seen: [],
};
let step = 'launch';

function isFront(url) {
  try {
    return new URL(url).origin === front.origin;
  } catch {
    return false;
  }
}

const onFront = (page, path) => isFront(page.url()) && new URL(page.url()).pathname === path;

// The pod name from the page header "<title> (<pod> @ <time>)".
async function podOf(page) {
  const heading = await page.locator('#heading').textContent({ timeout: 5000 });
  const m = /\(([^()]*) @ [^()]*\)\s*$/.exec(heading ?? '');
  if (!m) throw new Error(`no pod name in the page header ${JSON.stringify(heading)}`);
  return m[1];
}

async function errorText(page) {
  const error = page.locator('#error');
  return (await error.count()) > 0 ? (await error.textContent()).trim() : null;
}

// The session cookie as the browser stored it (no value).
async function sessionCookie(context) {
  const c = (await context.cookies(opts.front)).find((c) => c.name === SESSION);
  if (!c) return null;
  return {
    httpOnly: c.httpOnly,
    sameSite: c.sameSite,
    path: c.path,
    secure: c.secure,
    domain: c.domain,
    persistent: c.expires > 0,
    value_length: c.value.length,
  };
}

// Passes the IdP's login and consent pages until the browser is back on the front.
async function passIdp(page) {
  for (let i = 0; i < 10 && !isFront(page.url()); i++) {
    if ((await page.locator('input[name="login"]').count()) > 0) {
      log('IdP login page');
      await page.fill('input[name="login"]', opts.user);
      await page.fill('input[name="password"]', 'any-password');
      await Promise.all([page.waitForNavigation(), page.locator('button[type="submit"]').first().click()]);
    } else if ((await page.locator('input[name="prompt"][value="consent"]').count()) > 0) {
      log('IdP consent page');
      await Promise.all([page.waitForNavigation(), page.locator('form button[type="submit"]').first().click()]);
    } else {
      throw new Error(`unexpected IdP page ${page.url()}: ${(await page.textContent('body')).slice(0, 300)}`);
    }
  }
  if (!isFront(page.url())) throw new Error(`still at the IdP: ${page.url()}`);
}

// Saves a full-page screenshot as DIR/name when --screenshots DIR was given.
async function shoot(page, name) {
  if (!opts.screenshots) return;
  mkdirSync(opts.screenshots, { recursive: true });
  const path = join(opts.screenshots, name);
  await page.screenshot({ path, fullPage: true });
  (result.screenshots ??= []).push(path);
}

let context;
let userDataDir;
let exitCode = 0;
try {
  userDataDir = mkdtempSync(join(tmpdir(), 'flow-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    chromiumSandbox: false,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1200, height: 1400 },
  });
  context.setDefaultTimeout(20000);
  context.setDefaultNavigationTimeout(30000);
  const page = context.pages()[0] ?? (await context.newPage());
  const cdp = await context.newCDPSession(page);
  result.chromium = (await cdp.send('Browser.getVersion')).product;
  await cdp.detach();

  // Every request the page makes to the front (those answered from the browser's cache
  // too), with the Cookie header it carried (compared below; never printed).
  const frontRequests = [];
  page.on('request', async (req) => {
    if (!isFront(req.url())) return;
    const entry = { method: req.method(), path: new URL(req.url()).pathname, cookie: null };
    frontRequests.push(entry);
    try {
      const headers = await req.allHeaders();
      entry.cookie = headers.cookie ?? '';
    } catch {
      entry.cookie = null;
    }
  });
  const sentSessionCookie = (entry, value) =>
    entry.cookie !== null && entry.cookie.split(/;\s*/).includes(`${SESSION}=${value}`);

  step = 'login page';
  log('GET /');
  let response = await page.goto(`${opts.front}/`);
  result.steps.push({ step, status: response.status(), path: new URL(page.url()).pathname });
  if (response.status() !== 200) throw new Error(`GET / answered ${response.status()}`);
  await shoot(page, 'home.png');
  await page.fill('#scope', opts.scope);

  step = 'login';
  await Promise.all([page.waitForNavigation(), page.locator('form[action="/login"] button[type="submit"]').click()]);
  if (isFront(page.url())) throw new Error(`POST /login did not lead to the IdP: ${page.url()} ${await errorText(page)}`);
  result.login_cookie_during_login = (await context.cookies(opts.front)).some((c) => c.name === LOGIN);
  await passIdp(page);
  // Back on the front: /callback answered 303 to /user, which the browser followed.
  await page.waitForLoadState('load');
  const landed = new URL(page.url());
  result.steps.push({ step, path: landed.pathname, error: await errorText(page) });
  if (landed.pathname !== '/user') {
    const holds = (await context.cookies(opts.front)).some((c) => c.name === SESSION);
    throw new Error(
      `the login ended at ${landed.pathname}, not /user (the browser ${holds ? 'holds' : 'holds no'} ${SESSION} cookie): ` +
        `${(await errorText(page)) ?? (await page.textContent('body')).slice(0, 300)}`,
    );
  }

  step = 'user';
  result.username = (await page.locator('#username').textContent()).trim();
  result.session_cookie = await sessionCookie(context);
  result.login_cookie_after_login = (await context.cookies(opts.front)).some((c) => c.name === LOGIN);
  result.document_cookie = await page.evaluate(() => document.cookie);
  result.document_cookie_has_session = result.document_cookie.includes(`${SESSION}=`);
  const accessBefore = (await page.locator('#access-token').textContent()).trim();
  result.has_refresh_token = !(await page.locator('#refresh-token').textContent()).includes('(none');
  await shoot(page, 'user.png');

  // /user again until every replica has answered (each navigation is one request
  // through the front once the stylesheet is cached).
  step = 'user on every replica';
  const stored = (await context.cookies(opts.front)).find((c) => c.name === SESSION);
  const seen = new Set();
  const userLoads = [];
  seen.add(await podOf(page));
  result.pods_seen.push(await podOf(page));
  // At least one reload, so that the cookie is seen sent back with one replica too.
  for (let i = 0; i < 4 * opts.replicas && (i === 0 || seen.size < opts.replicas); i++) {
    const before = frontRequests.length;
    response = await page.goto(`${opts.front}/user`);
    const pod = await podOf(page);
    const requests = frontRequests.slice(before);
    const main = requests.find((r) => r.path === '/user');
    userLoads.push({
      status: response.status(),
      pod,
      path: new URL(page.url()).pathname,
      front_requests: requests.map((r) => `${r.method} ${r.path}`),
      sent_session_cookie: main ? sentSessionCookie(main, stored?.value ?? '\u0000') : false,
    });
    if (response.status() === 200 && new URL(page.url()).pathname === '/user') {
      seen.add(pod);
      result.pods_seen.push(pod);
    }
  }
  result.user_loads = userLoads;
  result.cookie_sent_back = userLoads.length > 0 && userLoads.every((l) => l.sent_session_cookie);

  step = 'refresh';
  log('Refresh');
  await Promise.all([page.waitForNavigation(), page.locator('#refresh').click()]);
  result.refresh_landed_on = new URL(page.url()).pathname;
  result.refresh_error = await errorText(page);
  if (result.refresh_landed_on !== '/user') throw new Error(`Refresh ended at ${page.url()}: ${result.refresh_error}`);
  result.pods_seen.push(await podOf(page));
  const accessAfter = (await page.locator('#access-token').textContent()).trim();
  result.access_token_changed = accessAfter.length > 0 && accessAfter !== accessBefore;

  step = 'logout';
  log('Logout');
  await Promise.all([page.waitForNavigation(), page.locator('#logout').click()]);
  if (isFront(page.url())) throw new Error(`Logout did not lead to the IdP: ${page.url()} ${await errorText(page)}`);
  result.session_cookie_after_local_logout = (await sessionCookie(context)) !== null;
  // The IdP's confirmation page: "Yes, sign me out".
  const yes = page.locator('button[name="logout"][value="yes"], button[value="yes"]');
  await yes.first().waitFor({ state: 'visible' });
  await Promise.all([page.waitForURL((u) => isFront(u.href)), yes.first().click()]);
  await page.waitForLoadState('load');
  result.logout_landed_on = new URL(page.url()).pathname;

  step = 'user after logout';
  response = await page.goto(`${opts.front}/user`);
  const redirected = response.request().redirectedFrom();
  result.user_after_logout = {
    final_path: new URL(page.url()).pathname,
    first_status: redirected ? (await redirected.response())?.status() ?? null : response.status(),
    final_status: response.status(),
  };
  result.session_cookie_after_logout = (await sessionCookie(context)) !== null;
  step = 'done';
  result.completed = true;
} catch (e) {
  exitCode = 1;
  result.completed = false;
  result.error = String(e?.message ?? e).split('\n').slice(0, 5).join('\n');
  result.step = step;
  try {
    const page = context?.pages()[0];
    if (page) {
      result.url = page.url();
      await shoot(page, 'failure.png');
    }
  } catch {
    // the page is gone; the error says why
  }
} finally {
  await context?.close().catch(() => {});
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`RESULT ${JSON.stringify(result)}`);
process.exit(exitCode);
