'use strict';
// Protocol 1.1, bound flows (docs/protocol.md, "Version 1.1: bound flows"), end to end in Debian's chromium: the relay
// over TLS on Redis (1.1 only: no --allow-unbound), the fake AS, a Node instance (instance.js) whose return handler opens
// the locked result, and the attacks 1.1 exists to stop. Each browser is a fresh context (own cookie jar); screenshots of
// the confirmation and delivery pages go to tests/artifacts/bound-*.png.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const H = require('./helpers.js');
const I = require('./instance.js');
const S = require('./seal.js');

const CLIENT_ID = 'cid';
const CLIENT_SECRET = 'test-secret';
const SCOPE = 'read:jira-work offline_access';
const AUDIENCE = 'api.atlassian.com';
// docs/protocol.md, "Security headers" and "Pages of version 1.1"
const CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const CSP_CONFIRM = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";
const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'strict-transport-security': 'max-age=31536000',
};
const TITLE = {
  confirm: 'Confirm this sign-in',
  delivery: 'Returning to Qorus',
  cancelled: 'Sign-in cancelled',
  startGone: 'Sign-in link no longer valid',
  startRefused: 'Confirmation not accepted',
  otherBrowser: 'Sign-in started in another browser',
  badRequest: 'Invalid authorization response',
};
const B64URL43 = /^[A-Za-z0-9_-]{43}$/;

const env = { releases: [] }; // releases (every release key delivered), dir, cert, ca, redis, as, relay, discovery, browser, inst, attackerSite
const contexts = [];
const secrets = new Set(); // never in the relay's output
const requests = []; // {url, method} of every request of every context
const relayResponses = []; // every response of the relay to a browser
const consoleProblems = [];

const DEBUG = !!process.env.BOUND_DEBUG;
const step = (...a) => DEBUG && console.error(`[${new Date().toISOString().slice(11, 23)}]`, ...a);

function remember(...values) {
  for (const v of values) if (typeof v === 'string' && v.length >= 8) secrets.add(v);
}

const relayApi = (p, opts = {}) => H.request(p.startsWith('https://') ? p : `${env.relay.base}${p}`, { ca: env.ca, ...opts });
const pickup = (s, wait = 0) => relayApi(s.poll_url, { headers: { Authorization: `Bearer ${s.poll_token}`, ...(wait ? { Prefer: `wait=${wait}` } : {}) }, ms: (wait + 10) * 1000 });
const tokenOf = (startUrl) => new URL(startUrl).searchParams.get('t');
const isCallback = (u) => u.split('?')[0] === env.discovery.redirect_uri;

/** A session made by someone other than the instance (an attacker, from a script): the instance knows nothing of it. */
async function attackerSession({ returnUri, label, scope = SCOPE }) {
  const body = { authorization_server: `${env.as.base}/authorize`, return_uri: returnUri,
    authorize_params: { client_id: CLIENT_ID, scope, audience: AUDIENCE }, ...(label ? { label } : {}) };
  const r = await relayApi('/v1/sessions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(r.status, 201, r.body);
  const s = JSON.parse(r.body);
  checkCreated(s);
  return s;
}

/** The 201 of a 1.1 session: no state, a start_url on the relay with a 43-character token. */
function checkCreated(s) {
  assert.deepEqual(Object.keys(s).sort(), ['expires_in', 'poll_token', 'poll_url', 'redirect_uri', 'session', 'start_url'], JSON.stringify(s));
  assert.equal(s.redirect_uri, env.discovery.redirect_uri);
  const u = new URL(s.start_url);
  assert.equal(`${u.origin}${u.pathname}`, `${env.relay.base}/v1/start`);
  assert.match(u.searchParams.get('t'), B64URL43);
  remember(s.session, s.poll_token, u.searchParams.get('t'));
}

async function newUser(opts = {}) {
  const context = await H.newContext(env.browser, opts);
  contexts.push(context);
  context.on('request', (q) => requests.push({ url: q.url(), method: q.method() }));
  context.on('response', (r) => {
    if (r.url().startsWith(env.relay.base)) relayResponses.push(r);
  });
  context.on('page', (p) => {
    p.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') consoleProblems.push(`${p.url().slice(0, 70)}: ${m.text()}`);
    });
    p.on('pageerror', (e) => consoleProblems.push(`${p.url().slice(0, 70)}: ${e.message}`));
  });
  return context;
}

function checkSecurityHeaders(h, what, csp) {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) assert.equal(h[k], v, `${what}: ${k}`);
  if (csp !== undefined) {
    assert.equal(h['content-security-policy'], csp, `${what}: Content-Security-Policy`);
    assert.equal(h['cross-origin-opener-policy'], 'same-origin', `${what}: Cross-Origin-Opener-Policy`);
  }
  assert.equal(h['access-control-allow-origin'], undefined, `${what}: no CORS`);
}

async function shot(page, name) {
  fs.mkdirSync(H.ARTIFACTS, { recursive: true });
  const file = path.join(H.ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(fs.statSync(file).size > 2000, `${name} has content`);
}

/** The page has the title and shows text on screen, legibly. */
async function checkReadable(page, { title, text }) {
  assert.equal(await page.title(), title);
  const loc = page.getByText(text, { exact: false }).first();
  assert.ok(await loc.isVisible(), `"${text}" visible`);
  const box = await loc.boundingBox();
  const vp = page.viewportSize();
  assert.ok(box && box.width > 0 && box.y >= 0 && box.y + box.height <= vp.height, `"${text}" on screen`);
  const size = await loc.evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
  assert.ok(size >= 12, `font size ${size}`);
}

/** Opens a start_url: the confirmation page, its headers and cookie. Returns {response, loadedAt}. */
async function openStart(page, startUrl, { shotName } = {}) {
  const response = await page.goto(startUrl, { waitUntil: 'load' });
  const loadedAt = Date.now();
  assert.equal(response.status(), 200, `start page: ${await response.text().catch(() => '')}`.slice(0, 300));
  const h = await response.allHeaders();
  checkSecurityHeaders(h, 'confirmation page', CSP_CONFIRM);
  assert.equal(await page.title(), TITLE.confirm);
  assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.id), 'cancel', 'Cancel has the focus');
  assert.equal(await page.locator('form').count(), 2, 'two forms: Cancel and Continue');
  if (shotName) {
    await waitArmed(page);
    await shot(page, shotName);
  }
  return { response, loadedAt };
}

/** What the confirmation page shows, in order: the destination, its bold parts, the positions of texts in the page. */
async function confirmView(page) {
  return page.evaluate(() => {
    const dest = document.querySelector('.dest');
    return {
      dest: dest ? dest.innerText.trim() : null,
      bold: dest ? [...dest.querySelectorAll('b')].map((b) => b.textContent) : [],
      text: document.body.innerText,
      images: document.images.length,
      scripts: document.scripts.length,
    };
  });
}

/** Waits until Continue can be clicked (its first second is over). */
async function waitArmed(page) {
  // a loop of evaluate() rather than waitForFunction(): it works in a context without JavaScript too
  const end = Date.now() + 5000;
  while ((await page.evaluate(() => getComputedStyle(document.getElementById('continue')).visibility)) !== 'visible') {
    assert.ok(Date.now() < end, 'Continue did not become visible within 5 s');
    await H.sleep(50);
  }
}

/** Continue (after its first second): the relay's 303 to the AS. Returns the AS consent page URL's parameters. */
async function continueToAs(page) {
  await waitArmed(page);
  const post = page.waitForResponse((r) => r.url() === `${env.relay.base}/v1/start` && r.request().method() === 'POST');
  await page.locator('#continue').click();
  const r = await post;
  if (r.status() !== 303) {
    const h = await r.request().allHeaders();
    await page.waitForLoadState('load');
    assert.fail(`Continue: POST /v1/start answered ${r.status()} "${await page.title()}"; the browser sent Origin: ${h.origin}, ` +
      `Sec-Fetch-Site: ${h['sec-fetch-site']}, a cookie: ${/__Host-authrelay=/.test(h.cookie || '')}`);
  }
  await page.waitForURL(`${env.as.base}/authorize?**`, { waitUntil: 'load' });
  checkSecurityHeaders(await r.allHeaders(), 'POST /v1/start', undefined);
  assert.equal(await page.title(), 'Authorize Qorus');
  const q = new URL(page.url()).searchParams;
  remember(q.get('state'));
  return q;
}

/** Rejects after ms with what was awaited. */
function within(promise, ms, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timeout (${ms} ms): ${what}`)), ms)))]).finally(() => clearTimeout(timer));
}

/**
 * A screenshot through CDP (a session opened before the navigation): it works while a navigation is pending, when
 * Playwright's page.screenshot() and page.evaluate() wait for it to commit.
 */
async function shotNow(cdp, name) {
  fs.mkdirSync(H.ARTIFACTS, { recursive: true });
  const r = await within(cdp.send('Page.captureScreenshot', { format: 'png' }), 10000, `screenshot ${name}`);
  const png = Buffer.from(r.data, 'base64');
  assert.ok(png.length > 2000, `${name} has content`);
  fs.writeFileSync(path.join(H.ARTIFACTS, name), png);
}

/** The delivery response's headers: the protocol's, COOP, and a CSP that allows one script by hash and has no form-action. */
async function checkDeliveryHeaders(delivery) {
  assert.equal(delivery.status(), 200, 'the callback answers with the delivery page');
  const h = await delivery.allHeaders();
  assert.match(h['content-security-policy'], /^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/]{43}='; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'$/);
  checkSecurityHeaders(h, 'delivery page', h['content-security-policy']);
  return h;
}

/** The delivery page's body: its one inline script is the one the CSP allows; its form and the values to paste. */
function checkDeliveryBody(body, csp, returnUri) {
  const scripts = [...body.matchAll(/<script[^>]*>([^<]*)<\/script>/g)].map((m) => m[1]);
  assert.equal(scripts.length, 1, 'one inline script');
  assert.ok(csp.includes(`'sha256-${crypto.createHash('sha256').update(scripts[0]).digest('base64')}'`), 'the CSP allows exactly that script');
  assert.match(body, /<title>Returning to Qorus<\/title>/);
  assert.ok(body.includes(`<form id="deliver" method="post" action="${returnUri}">`), 'the form posts to the confirmed return_uri');
  assert.doesNotMatch(body, /(src|href)=/i, 'loads nothing');
}

/** The fields a delivery POST carried, checked: session, status, message, release, form-encoded, no Referer. */
function checkPosted(posted, flowSession) {
  assert.equal(posted.method(), 'POST');
  assert.match(posted.headers()['content-type'], /^application\/x-www-form-urlencoded/);
  assert.equal(posted.headers().referer, undefined, 'no Referer to the return handler');
  const pairs = [...new URLSearchParams(posted.postData())];
  assert.deepEqual(pairs.map(([k]) => k), ['session', 'status', 'message', 'release']);
  const fields = Object.fromEntries(pairs);
  assert.equal(fields.session, flowSession);
  assert.match(fields.release, B64URL43);
  assert.ok(['success', 'error'].includes(fields.status));
  remember(fields.release);
  env.releases.push(fields.release);
  return fields;
}

/**
 * The callback and the delivery (act() makes the browser reach the callback: by default a click on button at the AS
 * consent page). mode 'hold': the page's own automatic POST waits at the return handler while the page is
 * photographed (and whileHeld() runs: the result is stored, the instance has not fetched it yet), then goes on. mode 'abort': that POST is stopped (the page stays), the page is checked in full and
 * photographed, and the fallback button delivers. Ends on the instance's /grant; returns {delivery, fields, grant}.
 */
async function decideAndDeliver(page, button, flowSession, { shotName, mode = 'hold', act, whileHeld, returnUri = env.inst.returnUri, grantBase = env.inst.base } = {}) {
  const match = (u) => u.href === returnUri;
  let autoResolve;
  const auto = new Promise((r) => (autoResolve = r));
  const onRequest = (r) => {
    if (r.method() === 'POST' && match(new URL(r.url()))) autoResolve(r);
  };
  page.on('request', onRequest);
  // hold: the instance keeps the POST waiting (a Playwright route would stall the page's CDP calls until it commits)
  const held = mode === 'hold' ? env.inst.holdNext() : null;
  if (mode === 'abort') await page.route(match, (route) => route.abort('aborted'));
  const failed = mode === 'abort' ? page.waitForEvent('requestfailed', { predicate: (r) => match(new URL(r.url())), timeout: 20000 }) : null;
  const cdp = mode === 'hold' && shotName ? await page.context().newCDPSession(page) : null;
  try {
    const cb = page.waitForResponse((r) => isCallback(r.url()), { timeout: 20000 });
    step('deliver: act');
    // not awaited here: a click waits for the navigations it starts, and one of them is held at the return handler
    const acting = (act ? act() : page.getByRole('button', { name: button, exact: true }).click()).then(() => null, (e) => e);
    const delivery = await cb;
    step('deliver: callback answered');
    const h = await checkDeliveryHeaders(delivery);
    const posted = await within(auto, 15000, 'the delivery page\'s automatic POST');
    const fields = checkPosted(posted, flowSession);
    step('deliver: posted');
    if (mode === 'hold') {
      assert.equal(await within(held.arrived, 15000, 'the POST at the return handler'), posted.postData(), 'the handler got the fields');
      if (shotName) await shotNow(cdp, shotName);
      step('deliver: shot');
      if (whileHeld) await whileHeld();
      held.release();
    } else {
      await failed;
      await page.unroute(match);
      // the page as parsed (its response body is gone once a navigation started): the one script, the form
      checkDeliveryBody(await page.content(), h['content-security-policy'], returnUri);
      assert.equal(await page.title(), TITLE.delivery, 'the page stays when its POST fails');
      assert.deepEqual(await page.evaluate(() => [document.getElementById('session').textContent, document.getElementById('release').textContent]),
        [fields.session, fields.release], 'the values to paste by hand');
      if (shotName) await shot(page, shotName);
      const again = page.waitForRequest((r) => match(new URL(r.url())) && r.method() === 'POST');
      await page.getByRole('button', { name: 'Continue to Qorus', exact: true }).click();
      assert.equal((await again).postData(), posted.postData(), 'the button posts the same fields');
    }
    await page.waitForURL(`${grantBase}/grant?**`, { waitUntil: 'load' });
    step('deliver: at grant');
    const err = await within(acting, 20000, 'the action that led to the callback');
    if (err) throw err;
    return { delivery, fields, grant: new URL(page.url()).searchParams };
  } finally {
    page.off('request', onRequest);
    if (held) held.release();
    if (cdp) await cdp.detach().catch(() => {});
  }
}

/** The newest code the fake AS issued (flows that need it run one at a time). */
async function newestCode() {
  const codes = JSON.parse((await H.request(`${env.as.base}/_codes`)).body);
  assert.ok(codes.length, 'the AS issued a code');
  const c = codes.sort((a, b) => b.issued - a.issued)[0].code;
  remember(c);
  return c;
}

/** The attacker's web site: serves /page (any HTML the test puts in site.html). */
function startAttackerSite() {
  const site = { html: '<!DOCTYPE html><title>x</title>' };
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(site.html);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      site.base = `http://127.0.0.1:${server.address().port}`;
      site.close = () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); });
      resolve(site);
    });
  });
}

describe('protocol 1.1 bound flows in chromium', { timeout: 420000 }, () => {
  before(async () => {
    assert.ok(fs.existsSync(H.AUTHRELAY_BIN), `AUTHRELAY_BIN ${H.AUTHRELAY_BIN} missing: build it first`);
    assert.ok(fs.existsSync(H.CHROMIUM), `${H.CHROMIUM} missing: apt-get install -y chromium`);
    env.dir = H.tmpDir('authrelay-bound-');
    env.cert = H.makeCert(env.dir);
    env.ca = fs.readFileSync(env.cert.cert);
    env.redis = await H.startRedis(env.dir);
    env.as = await H.startFakeAs(['--client-secret', CLIENT_SECRET]);
    env.relayLog = path.join(env.dir, 'relay.out');
    env.relay = await H.startRelay({ dir: env.dir, redisUrl: env.redis.url, cert: env.cert.cert, key: env.cert.key, logFile: env.relayLog });
    const d = await relayApi('/.well-known/authrelay');
    assert.equal(d.status, 200, d.body);
    env.discovery = JSON.parse(d.body);
    env.inst = await I.startInstance({ relay: { base: env.relay.base, ca: env.ca }, as: { base: env.as.base, issuer: env.as.base }, clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET, name: 'Qorus test instance' });
    env.attackerSite = await startAttackerSite();
    env.browser = await H.launchChromium();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (env.browser) await env.browser.close().catch(() => {});
    if (env.inst) await env.inst.close();
    if (env.attackerSite) await env.attackerSite.close();
    await H.cleanup();
  });

  it('discovery says 1.1 without unbound sessions; a version-1 session is refused; the instance opens what seal.js locked', { timeout: 90000 }, async () => {
    assert.equal(env.discovery.version, '1.1');
    assert.equal(env.discovery.unbound_sessions, false);
    const v1 = await relayApi('/v1/sessions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ authorization_server: `${env.as.base}/authorize`, return_uri: env.inst.returnUri }) });
    assert.equal(v1.status, 400, v1.body);
    assert.equal(JSON.parse(v1.body).error, 'invalid_request');
    // the instance's opener (seal.js's unlock, checked against tests/vectors/locked.json by lock.test.js)
    const sid = crypto.randomBytes(16).toString('base64url');
    const l = S.lock('{"status":"authorized","code":"c"}', sid);
    assert.equal(I.unlock(l.release, l.locked, sid), '{"status":"authorized","code":"c"}');
    assert.throws(() => I.unlock(crypto.randomBytes(32).toString('base64url'), l.locked, sid));
    assert.throws(() => I.unlock(l.release, l.locked, crypto.randomBytes(16).toString('base64url')));
  });

  it('1. the legitimate path: Connect, one confirmation (after its first second), Allow, the return handler opens the result, "Connected"', { timeout: 90000 }, async () => {
    const flow = await env.inst.create({ label: 'Qorus test instance' });
    checkCreated(flow.session);
    step('1: created');
    const user = await newUser();
    const page = await user.newPage();
    // the instance's Connect link sends the browser to start_url (never to the AS)
    const startResp = page.waitForResponse((r) => r.url() === flow.session.start_url);
    await page.goto(flow.connectUrl, { waitUntil: 'load' });
    step('1: at start');
    assert.equal(page.url(), flow.session.start_url);
    const sr = await startResp;
    assert.equal(sr.status(), 200);
    const sh = await sr.allHeaders();
    checkSecurityHeaders(sh, 'confirmation page', CSP_CONFIRM);
    const [nv, ...attrs] = (sh['set-cookie'] || '').split(/;\s*/);
    assert.match(nv, /^__Host-authrelay=[A-Za-z0-9_-]{43}$/);
    const attr = Object.fromEntries(attrs.map((a) => [a.split('=')[0].toLowerCase(), a.includes('=') ? a.slice(a.indexOf('=') + 1) : true]));
    assert.deepEqual(Object.keys(attr).sort(), ['httponly', 'max-age', 'path', 'samesite', 'secure'], sh['set-cookie']);
    assert.deepEqual([attr.path, attr.samesite.toLowerCase()], ['/', 'none']);
    const maxAge = Number(attr['max-age']);
    assert.ok(maxAge > 0 && maxAge <= env.discovery.session_ttl_max, `Max-Age ${maxAge}`);
    const cookies = (await user.cookies(env.relay.base)).filter((c) => c.name === '__Host-authrelay');
    assert.equal(cookies.length, 1, 'the browser kept the cookie');
    assert.deepEqual([cookies[0].secure, cookies[0].httpOnly, cookies[0].sameSite, cookies[0].path], [true, true, 'None', '/']);
    remember(cookies[0].value);
    const hiddenAtFirst = await page.evaluate(() => getComputedStyle(document.getElementById('continue')).visibility);
    assert.equal(hiddenAtFirst, 'hidden', 'Continue is hidden during its first second');

    step('1: cookie checked');
    const v = await confirmView(page);
    step('1: view');
    const port = new URL(env.inst.base).port;
    assert.equal(v.dest, `http://127.0.0.1:${port}${I.RETURN_PATH}`);
    assert.deepEqual(v.bold, ['127.0.0.1', `:${port}`], 'an IP host is its own registrable domain; the non-default port in bold');
    assert.equal(v.images + v.scripts, 0, 'no images, no scripts');
    const iAs = v.text.indexOf('127.0.0.1', v.text.indexOf(I.RETURN_PATH));
    assert.ok(v.text.indexOf(`:${port}`) < v.text.indexOf(I.RETURN_PATH) && iAs > 0, 'the destination, then the AS host');
    assert.ok(v.text.indexOf(SCOPE) > iAs, 'the scope after the AS host');
    assert.ok(v.text.indexOf(AUDIENCE) > iAs, 'the audience after the AS host');
    assert.ok(v.text.indexOf('\u201cQorus test instance\u201d (supplied by the instance, not verified)') > v.text.indexOf(SCOPE), 'the label last, quoted, unverified');
    await waitArmed(page);
    await shot(page, 'bound-01-confirm.png');

    step('1: continue');
    const q = await continueToAs(page);
    step('1: at AS');
    // the AS authorize request the relay built: the instance's parameters, response_type=code, its redirect_uri, a fresh state
    assert.deepEqual([...q.keys()].sort(), ['audience', 'client_id', 'code_challenge', 'code_challenge_method', 'redirect_uri', 'response_type', 'scope', 'state']);
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), CLIENT_ID);
    assert.equal(q.get('redirect_uri'), env.discovery.redirect_uri);
    assert.equal(q.get('scope'), SCOPE);
    assert.equal(q.get('audience'), AUDIENCE);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.equal(q.get('code_challenge'), crypto.createHash('sha256').update(flow.verifier).digest('base64url'));
    assert.match(q.get('state'), /^[A-Za-z0-9_-]{1,128}$/);

    const d = await decideAndDeliver(page, 'Allow', flow.session.session, { shotName: 'bound-01-delivery.png' });
    const code = await newestCode();
    assert.ok(!Object.values(d.fields).some((v) => v.includes(code) || v.includes(q.get('state'))), 'the delivery carries neither code nor state');
    assert.equal(d.fields.status, 'success');
    assert.equal(d.fields.message, '');
    assert.equal(d.grant.get('status'), 'success');
    await checkReadable(page, { title: 'Qorus - OAuth2 authorization', text: 'Connected' });
    await shot(page, 'bound-01-instance-connected.png');

    const out = flow.outcome;
    assert.equal(out.status, 'success', JSON.stringify(out));
    assert.deepEqual(out.result, { status: 'authorized', code, state: q.get('state'), iss: env.as.base });
    assert.ok(out.token.access_token, 'the instance exchanged the code itself (PKCE and its secret)');
    remember(out.token.access_token, out.token.refresh_token);
    assert.equal(out.acknowledged, 204);
    // the return handler was reached by a cross-site POST that did not carry the instance's SameSite=Lax cookie
    const ret = env.inst.returns.at(-1);
    assert.equal(ret.method, 'POST');
    assert.equal(ret.laxCookie, false, 'a SameSite=Lax cookie does not come along on the cross-site POST');
    assert.equal(ret.referer, null);
    assert.ok(!requests.some((r) => r.url.includes(d.fields.release)), 'the release key is in no URL');
    await user.close();
  });

  it('2. consent phishing: an attacker\'s session shows the attacker\'s host first, its registrable domain in bold; labels are escaped', { timeout: 90000 }, async () => {
    const label = 'ACME Corp production Qorus';
    const s = await attackerSession({ returnUri: 'https://qorus.acme-corp.attacker.example:8443/authrelay/return', label });
    remember(label);
    const user = await newUser();
    const page = await user.newPage();
    await openStart(page, s.start_url, { shotName: 'bound-02-phishing-confirm.png' });
    const v = await confirmView(page);
    assert.equal(v.dest, 'https://qorus.acme-corp.attacker.example:8443/authrelay/return');
    assert.deepEqual(v.bold, ['attacker.example', ':8443'], 'the registrable domain and the non-default port in bold');
    const boldStyle = await page.locator('.dest b').first().evaluate((el) => Number(getComputedStyle(el).fontWeight));
    assert.ok(boldStyle >= 600, `bold (${boldStyle})`);
    const iDest = v.text.indexOf('qorus.acme-corp.attacker.example');
    const iAs = v.text.indexOf('127.0.0.1');
    const iLabel = v.text.indexOf(`\u201c${label}\u201d`);
    assert.ok(iDest >= 0 && iAs > iDest && iLabel > iAs, `order: destination ${iDest}, AS ${iAs}, label ${iLabel}`);
    assert.ok(v.text.indexOf('(supplied by the instance, not verified)') > iLabel);
    // in DOM order too: the first <b> of the page is the attacker's registrable domain
    assert.equal(await page.locator('b').first().textContent(), 'attacker.example');
    // the victim notices and cancels: the attacker gets a plain denial
    await Promise.all([page.waitForURL(`${env.relay.base}/v1/start`, { waitUntil: 'load' }), page.locator('#cancel').click()]);
    assert.equal(await page.title(), TITLE.cancelled);
    assert.deepEqual(JSON.parse((await pickup(s)).body), { status: 'denied', error: 'access_denied' });

    // an xn-- host is shown as received (never decoded); a label with markup is text
    const evil = '<img src=x onerror=alert(1)> Qorus';
    const s2 = await attackerSession({ returnUri: 'https://login.xn--80ak6aa92e.com/authrelay/return', label: evil });
    remember(evil);
    await openStart(page, s2.start_url, { shotName: 'bound-02-phishing-idn-confirm.png' });
    const v2 = await confirmView(page);
    assert.equal(v2.dest, 'https://login.xn--80ak6aa92e.com/authrelay/return');
    assert.deepEqual(v2.bold, ['xn--80ak6aa92e.com']);
    assert.ok(!v2.text.includes('\u0430\u0440\u0440\u04cf\u0435'), 'not decoded to Unicode');
    assert.equal(v2.images, 0, 'the label\'s markup is not markup');
    assert.ok(v2.text.includes(`\u201c${evil}\u201d`), 'the label as text');
    await user.close();
  });

  it('3. return_uri on the victim\'s own instance, session created by the attacker: the attacker holds a locked blob it cannot open; the victim\'s handler discards the release', { timeout: 90000 }, async () => {
    const s = await attackerSession({ returnUri: env.inst.returnUri, label: 'Qorus test instance' });
    const eventsBefore = env.inst.events.length;
    const user = await newUser();
    const page = await user.newPage();
    await openStart(page, s.start_url, { shotName: 'bound-03-victim-origin-confirm.png' });
    await continueToAs(page); // it shows the victim's own instance: the victim continues
    const d = await decideAndDeliver(page, 'Allow', s.session, { shotName: 'bound-03-victim-origin-delivery.png' });
    const code = await newestCode();
    assert.equal(d.grant.get('status'), 'error');
    assert.equal(d.grant.get('message'), 'unknown_session');
    await checkReadable(page, { title: 'Qorus - OAuth2 authorization', text: 'Not connected (unknown_session)' });
    const ev = env.inst.events.slice(eventsBefore);
    assert.deepEqual(ev.map((e) => [e.kind, e.session]), [['discarded', s.session]], 'the victim\'s handler discarded it, and did nothing else');

    // the attacker's pickup: a locked blob without the code in clear
    const r = await pickup(s, 5);
    assert.equal(r.status, 200, r.body);
    const body = JSON.parse(r.body);
    assert.deepEqual(Object.keys(body).sort(), ['locked', 'status']);
    assert.equal(body.status, 'locked');
    assert.ok(!r.body.includes(code), 'no code in clear');
    const raw = Buffer.from(body.locked, 'base64url');
    assert.equal(raw[0], 0x01);
    // without the release key nothing opens it: no key, a random key, the key of another flow
    assert.throws(() => I.unlock('', body.locked, s.session));
    for (let i = 0; i < 4; ++i) assert.throws(() => I.unlock(crypto.randomBytes(32).toString('base64url'), body.locked, s.session));
    assert.ok(env.releases.length >= 2);
    for (const k of env.releases.slice(0, -1)) assert.throws(() => I.unlock(k, body.locked, s.session), 'the key of another flow');
    // the key went only to the victim's handler (the test's probe of what it threw away), and it is the key: the code
    const thrown = env.inst.probe.at(-1);
    assert.equal(thrown.session, s.session);
    assert.equal(thrown.release, d.fields.release);
    const opened = JSON.parse(I.unlock(thrown.release, body.locked, s.session));
    assert.equal(opened.status, 'authorized');
    assert.equal(opened.code, code);
    assert.throws(() => I.unlock(thrown.release, body.locked, crypto.randomBytes(16).toString('base64url')), 'bound to the session id');
    await user.close();
  });

  it('4. an attacker page opens start_url in a popup, then sends the browser straight to the AS: no state exists, the callback is refused, nothing stored', { timeout: 90000 }, async () => {
    const s = await attackerSession({ returnUri: 'https://attacker.example/oauth/return' });
    const user = await newUser();
    const page = await user.newPage();
    env.attackerSite.html = '<!DOCTYPE html><html><head><title>Free stuff</title></head><body><p>Loading...</p></body></html>';
    await page.goto(`${env.attackerSite.base}/page`);
    const popupP = user.waitForEvent('page');
    await page.evaluate((u) => { window.popupHandle = window.open(u, '_blank'); }, s.start_url);
    const popup = await popupP;
    await popup.waitForLoadState('load');
    assert.equal(await popup.title(), TITLE.confirm);
    // Cross-Origin-Opener-Policy: same-origin severs the opener: the attacker cannot script or steer the popup
    assert.equal(await page.evaluate(() => window.popupHandle === null || window.popupHandle.closed), true, 'the attacker\'s handle on the popup is closed');
    assert.equal(await popup.evaluate(() => window.opener), null, 'the confirmation page has no opener');
    assert.ok((await user.cookies(env.relay.base)).some((c) => c.name === '__Host-authrelay'), 'the popup gave the browser its relay cookie');

    // the AS authorize URL the attacker can build: no state (none exists before Continue), or one made up
    const asLogBefore = JSON.parse((await H.request(`${env.as.base}/_log`)).body).length;
    for (const state of [null, crypto.randomBytes(32).toString('base64url'), `${crypto.randomBytes(40).toString('base64url')}`]) {
      const q = new URLSearchParams({ response_type: 'code', client_id: CLIENT_ID, redirect_uri: s.redirect_uri, scope: SCOPE });
      if (state) q.set('state', state);
      const cb = page.waitForResponse((r) => isCallback(r.url()));
      await page.evaluate((u) => { location.href = u; }, `${env.as.base}/authorize?${q}`);
      await page.waitForURL(`${env.as.base}/authorize?**`, { waitUntil: 'load' });
      await page.getByRole('button', { name: 'Allow', exact: true }).click();
      const r = await cb;
      assert.equal(r.status(), 400, `state ${state}: the callback is refused`);
      await page.waitForLoadState('load');
      assert.equal(await page.title(), TITLE.badRequest);
      checkSecurityHeaders(await r.allHeaders(), 'callback 400', CSP);
      await newestCode();
      const p = await pickup(s);
      assert.equal(p.status, 202, `nothing stored: ${p.body}`);
      assert.equal(JSON.parse(p.body).status, 'pending');
    }
    await shot(page, 'bound-04-attacker-no-state.png');
    assert.ok(JSON.parse((await H.request(`${env.as.base}/_log`)).body).length > asLogBefore);

    // the attacker page also tries to press Continue for the victim: a cross-site POST with the token it knows, but no
    // valid CSRF token (an HMAC of the session and the victim's cookie) and a foreign Origin
    env.attackerSite.html = '<!DOCTYPE html><html><head><title>Free stuff</title></head><body>' +
      `<form id="f" method="post" action="${env.relay.base}/v1/start"><input type="hidden" name="t" value="${tokenOf(s.start_url)}">` +
      `<input type="hidden" name="csrf" value="${crypto.randomBytes(32).toString('base64url')}"><input type="hidden" name="action" value="continue">` +
      '<button id="go">go</button></form></body></html>';
    await page.goto(`${env.attackerSite.base}/page`);
    const post = page.waitForResponse((r) => r.url() === `${env.relay.base}/v1/start`);
    await page.locator('#go').click();
    const pr = await post;
    assert.equal(pr.status(), 403);
    await page.waitForLoadState('load');
    assert.equal(await page.title(), TITLE.startRefused);
    assert.equal((await pickup(s)).status, 202, 'still pending');
    // and the token was not consumed: the confirmation page still answers
    assert.equal((await popup.reload()).status(), 200);
    assert.equal(await popup.title(), TITLE.confirm);
    await user.close();
  });

  it('5. the callback replayed from another browser with the right state gets 403 and stores nothing; the real browser then completes', { timeout: 90000 }, async () => {
    const flow = await env.inst.create();
    const user = await newUser();
    const page = await user.newPage();
    await openStart(page, flow.session.start_url, { shotName: 'bound-05-confirm.png' });
    const q = await continueToAs(page);
    // hold the AS's redirect: take the callback URL (code and the right state) out of its 302
    let callbackUrl = null;
    await page.route(`${env.as.base}/authorize/decision`, async (route) => {
      const r = await route.fetch({ maxRedirects: 0 });
      callbackUrl = r.headers().location;
      await route.fulfill({ status: 200, contentType: 'text/html', body: '<!DOCTYPE html><title>held</title><p>held by the test</p>' });
    });
    await page.getByRole('button', { name: 'Allow', exact: true }).click();
    await page.waitForFunction(() => document.title === 'held', null, { polling: 50 });
    await page.unroute(`${env.as.base}/authorize/decision`);
    assert.ok(callbackUrl && isCallback(callbackUrl), callbackUrl);
    assert.equal(new URL(callbackUrl).searchParams.get('state'), q.get('state'));
    remember(new URL(callbackUrl).searchParams.get('code'));

    // another browser (its own cookie jar, maybe with a relay cookie of its own) replays it
    const thief = await newUser();
    const tp = await thief.newPage();
    await openStart(tp, (await attackerSession({ returnUri: 'https://attacker.example/r' })).start_url); // has a relay cookie now
    const tr = await tp.goto(callbackUrl);
    assert.equal(tr.status(), 403);
    checkSecurityHeaders(await tr.allHeaders(), 'callback 403', CSP);
    await checkReadable(tp, { title: TITLE.otherBrowser, text: 'started in another browser' });
    await shot(tp, 'bound-05-other-browser-403.png');
    // without any cookie, or with a made-up one: 403 too
    assert.equal((await relayApi(callbackUrl)).status, 403);
    assert.equal((await relayApi(callbackUrl, { headers: { Cookie: `__Host-authrelay=${crypto.randomBytes(32).toString('base64url')}` } })).status, 403);
    const p = await pickup(flow.session);
    assert.equal(p.status, 202, `nothing stored: ${p.body}`);

    // the browser that confirmed completes with the same callback
    const cookieA = (await user.cookies(env.relay.base)).find((c) => c.name === '__Host-authrelay').value;
    const d = await decideAndDeliver(page, null, flow.session.session, {
      shotName: 'bound-05-delivery.png',
      act: () => page.goto(callbackUrl, { waitUntil: 'commit' }),
      whileHeld: async () => {
        // stored, not yet acknowledged: a replay with the confirming browser's cookie is 409; from the other browser
        // (a valid cookie of its own) 409 or 403; the first result stands either way
        assert.equal((await relayApi(callbackUrl, { headers: { Cookie: `__Host-authrelay=${cookieA}` } })).status, 409);
        const r = await relayApi(callbackUrl, { headers: { Cookie: (await thief.cookies(env.relay.base)).map((c) => `${c.name}=${c.value}`).join('; ') } });
        assert.ok([403, 409].includes(r.status), `the other browser's replay: ${r.status}`);
      },
    });
    assert.equal(d.grant.get('status'), 'success');
    await checkReadable(page, { title: 'Qorus - OAuth2 authorization', text: 'Connected' });
    assert.equal(flow.outcome.status, 'success', JSON.stringify(flow.outcome));
    assert.equal(flow.outcome.result.state, q.get('state'));
    assert.equal(flow.outcome.acknowledged, 204);
    // acknowledged (DELETE): the session is gone, a replay is 410
    const gone = await page.goto(callbackUrl);
    assert.equal(gone.status(), 410);
    assert.equal(await page.title(), 'Authorization expired');
    await user.close();
    await thief.close();
  });

  it('6. Cancel (the focused button: Enter cancels): the "cancelled" page, a plain denial, the start page is gone, the AS never asked', { timeout: 90000 }, async () => {
    const flow = await env.inst.create();
    const asBefore = JSON.parse((await H.request(`${env.as.base}/_log`)).body).length;
    const returnsBefore = env.inst.returns.length;
    const user = await newUser();
    const page = await user.newPage();
    await openStart(page, flow.session.start_url, { shotName: 'bound-06-confirm.png' });
    const post = page.waitForResponse((r) => r.url() === `${env.relay.base}/v1/start` && r.request().method() === 'POST');
    await page.keyboard.press('Enter');
    const r = await post;
    assert.equal(r.status(), 200);
    checkSecurityHeaders(await r.allHeaders(), 'cancelled page', CSP);
    await page.waitForURL(`${env.relay.base}/v1/start`, { waitUntil: 'load' });
    await checkReadable(page, { title: TITLE.cancelled, text: 'You cancelled this sign-in' });
    await shot(page, 'bound-06-cancelled.png');
    const p = await pickup(flow.session);
    assert.equal(p.status, 200, p.body);
    assert.deepEqual(JSON.parse(p.body), { status: 'denied', error: 'access_denied' }, 'plain, not locked');
    const gone = await page.goto(flow.session.start_url);
    assert.equal(gone.status(), 410);
    await checkReadable(page, { title: TITLE.startGone, text: 'no longer valid' });
    assert.equal(JSON.parse((await H.request(`${env.as.base}/_log`)).body).length, asBefore, 'the AS was never asked');
    assert.equal(env.inst.returns.length, returnsBefore, 'nothing was delivered');
    await user.close();
  });

  it('7. a denial at the AS: delivered locked, the instance opens access_denied (with iss), "Not connected"', { timeout: 90000 }, async () => {
    const flow = await env.inst.create();
    const user = await newUser();
    const page = await user.newPage();
    await openStart(page, flow.session.start_url, { shotName: 'bound-07-confirm.png' });
    const q = await continueToAs(page);
    const d = await decideAndDeliver(page, 'Deny', flow.session.session, { shotName: 'bound-07-delivery-denied.png', mode: 'abort' });
    assert.equal(d.fields.status, 'error');
    assert.equal(d.fields.message, 'access_denied');
    assert.equal(d.grant.get('status'), 'error');
    assert.equal(d.grant.get('message'), 'access_denied');
    await checkReadable(page, { title: 'Qorus - OAuth2 authorization', text: 'Not connected (access_denied)' });
    await shot(page, 'bound-07-instance-denied.png');
    assert.deepEqual(flow.outcome.result, { status: 'denied', error: 'access_denied', error_description: 'The user denied access', iss: env.as.base });
    assert.ok(q.get('state'));
    await user.close();
  });

  it('8. response_mode=form_post: the AS POSTs cross-site to the relay, which still knows the browser and delivers', { timeout: 90000 }, async () => {
    const flow = await env.inst.create({ responseMode: 'form_post' });
    const user = await newUser();
    const page = await user.newPage();
    await openStart(page, flow.session.start_url, { shotName: 'bound-08-confirm.png' });
    const q = await continueToAs(page);
    assert.equal(q.get('response_mode'), 'form_post');
    const cbReq = page.waitForRequest((r) => isCallback(r.url()));
    const d = await decideAndDeliver(page, 'Allow', flow.session.session, { shotName: 'bound-08-delivery.png' });
    const req = await cbReq;
    assert.equal(req.method(), 'POST');
    assert.equal(req.url(), env.discovery.redirect_uri, 'nothing in the query');
    assert.match(req.headers()['content-type'], /^application\/x-www-form-urlencoded/);
    assert.equal(d.grant.get('status'), 'success');
    await checkReadable(page, { title: 'Qorus - OAuth2 authorization', text: 'Connected' });
    const code = await newestCode();
    assert.equal(flow.outcome.status, 'success', JSON.stringify(flow.outcome));
    assert.equal(flow.outcome.result.code, code);
    assert.equal(flow.outcome.result.state, q.get('state'));
    await user.close();
  });

  it('9. reloads: the start page (and a link scanner\'s GET) leave it usable before Continue; after Continue it is a 410 page', { timeout: 90000 }, async () => {
    const flow = await env.inst.create();
    // a link scanner fetches the URL first, without any cookie
    const scan = await relayApi(flow.session.start_url);
    assert.equal(scan.status, 200);
    assert.match(scan.body, /<title>Confirm this sign-in<\/title>/);
    const user = await newUser();
    const page = await user.newPage();
    await openStart(page, flow.session.start_url);
    const cookie1 = (await user.cookies(env.relay.base)).find((c) => c.name === '__Host-authrelay').value;
    for (let i = 0; i < 2; ++i) {
      const r = await page.reload({ waitUntil: 'load' });
      assert.equal(r.status(), 200, 'a reload before Continue');
      assert.equal(await page.title(), TITLE.confirm);
      assert.equal((await r.allHeaders())['set-cookie'], undefined, 'the cookie is set once, then reused');
    }
    assert.equal((await user.cookies(env.relay.base)).find((c) => c.name === '__Host-authrelay').value, cookie1);
    await shot(page, 'bound-09-confirm-after-reload.png');
    const form = await page.evaluate(() => Object.fromEntries(new FormData(document.querySelectorAll('form')[1])));
    assert.equal(form.action, 'continue');
    await continueToAs(page);

    // after Continue: the start page is gone, in another tab, by Back, and for a replayed POST of the form
    const tab2 = await user.newPage();
    const g = await tab2.goto(flow.session.start_url);
    assert.equal(g.status(), 410);
    checkSecurityHeaders(await g.allHeaders(), 'start 410', CSP);
    await checkReadable(tab2, { title: TITLE.startGone, text: 'no longer valid' });
    await shot(tab2, 'bound-09-start-410.png');
    const again = await relayApi('/v1/start', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: `__Host-authrelay=${cookie1}`,
      Origin: env.relay.base }, body: new URLSearchParams(form).toString() });
    assert.equal(again.status, 410, 'the token is consumed: a second Continue is refused');
    const back = await page.goBack({ waitUntil: 'load' });
    assert.equal(back && back.status(), 410, 'Back from the AS');
    await page.goForward({ waitUntil: 'load' });
    assert.equal(await page.title(), 'Authorize Qorus');
    const d = await decideAndDeliver(page, 'Allow', flow.session.session);
    assert.equal(d.grant.get('status'), 'success');
    assert.equal(flow.outcome.status, 'success', JSON.stringify(flow.outcome));
    await user.close();
  });

  it('10. two flows in two tabs of one browser, confirmed in one order and completed in the other', { timeout: 90000 }, async () => {
    const a = await env.inst.create({ label: 'Qorus A' });
    const b = await env.inst.create({ label: 'Qorus B' });
    const user = await newUser();
    const ta = await user.newPage();
    const tb = await user.newPage();
    await openStart(ta, a.session.start_url, { shotName: 'bound-10-tab-a-confirm.png' });
    await openStart(tb, b.session.start_url);
    assert.equal((await user.cookies(env.relay.base)).filter((c) => c.name === '__Host-authrelay').length, 1, 'one cookie for the browser');
    const qa = await continueToAs(ta);
    const qb = await continueToAs(tb);
    assert.notEqual(qa.get('state'), qb.get('state'));
    const db = await decideAndDeliver(tb, 'Allow', b.session.session, { shotName: 'bound-10-tab-b-delivery.png' });
    const da = await decideAndDeliver(ta, 'Allow', a.session.session);
    assert.equal(db.grant.get('status'), 'success');
    assert.equal(da.grant.get('status'), 'success');
    for (const [f, q] of [[a, qa], [b, qb]]) {
      assert.equal(f.outcome.status, 'success', JSON.stringify(f.outcome));
      assert.equal(f.outcome.result.state, q.get('state'));
      remember(f.outcome.result.code);
    }
    assert.notEqual(a.outcome.result.code, b.outcome.result.code);
    await checkReadable(ta, { title: 'Qorus - OAuth2 authorization', text: 'Connected' });
    await checkReadable(tb, { title: 'Qorus - OAuth2 authorization', text: 'Connected' });
    await user.close();
  });

  it('11. Continue clicked within the first second does nothing; after the second it works', { timeout: 90000 }, async () => {
    const flow = await env.inst.create();
    const user = await newUser();
    const page = await user.newPage();
    const posts = [];
    page.on('request', (r) => {
      if (r.method() === 'POST') posts.push(r.url());
    });
    const { loadedAt } = await openStart(page, flow.session.start_url);
    const box = await page.locator('#continue').boundingBox();
    const vis = await page.evaluate(() => getComputedStyle(document.getElementById('continue')).visibility);
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    const clickedAfter = Date.now() - loadedAt;
    assert.equal(vis, 'hidden', 'Continue is hidden when clicked');
    assert.ok(clickedAfter < 900, `the click came ${clickedAfter} ms after load: within the first second`);
    await shot(page, 'bound-11-early-click-confirm.png');
    await H.sleep(400);
    assert.deepEqual(posts, [], 'no POST was sent');
    assert.equal(page.url(), flow.session.start_url, 'no navigation');
    assert.equal((await pickup(flow.session)).status, 202);
    // Tab and Enter cannot reach it either: a hidden button takes no focus
    const focusable = await page.evaluate(() => { document.getElementById('continue').focus(); return document.activeElement.id; });
    assert.notEqual(focusable, 'continue');
    await H.sleep(Math.max(0, 1200 - (Date.now() - loadedAt)));
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await page.waitForURL(`${env.as.base}/authorize?**`, { waitUntil: 'load' });
    assert.deepEqual(posts, [`${env.relay.base}/v1/start`]);
    const d = await decideAndDeliver(page, 'Allow', flow.session.session, { shotName: 'bound-11-delivery.png' });
    assert.equal(d.grant.get('status'), 'success');
    await user.close();
  });

  it('12. the delivery page without JavaScript: the button and the values to paste by hand (authrelay client --no-listen)', { timeout: 90000 }, async () => {
    const flow = await env.inst.create();
    const user = await newUser({ javaScriptEnabled: false });
    const page = await user.newPage();
    await openStart(page, flow.session.start_url, { shotName: 'bound-12-nojs-confirm.png' });
    await continueToAs(page);
    const cb = page.waitForResponse((r) => isCallback(r.url()));
    await page.getByRole('button', { name: 'Allow', exact: true }).click();
    const r = await cb;
    const h = await checkDeliveryHeaders(r);
    checkDeliveryBody(await r.text(), h['content-security-policy'], env.inst.returnUri);
    await page.waitForLoadState('load');
    await H.sleep(300);
    assert.equal(await page.title(), TITLE.delivery, 'it stays on the delivery page');
    assert.ok(isCallback(page.url()));
    const button = page.getByRole('button', { name: 'Continue to Qorus' });
    assert.ok(await button.isVisible(), 'the fallback button');
    await page.locator('details summary').click();
    const session = await page.locator('#session').textContent();
    const release = await page.locator('#release').textContent();
    assert.ok(await page.locator('#release').isVisible(), 'the release key shown for pasting');
    assert.equal(session, flow.session.session);
    assert.match(release, B64URL43);
    remember(release);
    await shot(page, 'bound-12-nojs-delivery.png');
    // pasted by hand into a client that does not listen: the pickup opens with them
    const p = await pickup(flow.session, 5);
    assert.equal(p.status, 200, p.body);
    const code = await newestCode();
    const opened = JSON.parse(I.unlock(release, JSON.parse(p.body).locked, session));
    assert.equal(opened.status, 'authorized');
    assert.equal(opened.code, code);
    // and the button delivers by hand too
    await Promise.all([page.waitForURL(`${env.inst.base}/grant?**`, { waitUntil: 'load' }), button.click()]);
    await checkReadable(page, { title: 'Qorus - OAuth2 authorization', text: 'Connected' });
    assert.equal(flow.outcome.status, 'success', JSON.stringify(flow.outcome));
    assert.equal(flow.outcome.result.code, code);
    await user.close();
  });

  /** `authrelay client authorize` (protocol 1.1) with extra arguments; resolves {c, startUrl} once it printed "Open: ". */
  async function startClient(name, extra, opts = {}) {
    const args = ['client', 'authorize', '--relay', env.relay.base, '--cacert', env.cert.cert, '--authorize-url', `${env.as.base}/authorize`,
      '--client-id', CLIENT_ID, '--scope', 'read:jira-work', '--audience', AUDIENCE, ...extra];
    // no display: the client must not hand the URL to xdg-open
    const c = H.start(H.AUTHRELAY_BIN, args, { name, env: { DISPLAY: '', WAYLAND_DISPLAY: '' }, ...opts });
    const m = await c.waitFor('stderr', /^Open: (\S+)\r?$/m, 20000);
    const u = new URL(m[1]);
    assert.equal(`${u.origin}${u.pathname}`, `${env.relay.base}/v1/start`, 'the client sends the user to start_url, not to the AS');
    remember(u.searchParams.get('t'));
    return { c, startUrl: m[1] };
  }

  it('13. authrelay client (1.1, its return listener): confirmation, Allow, the delivery page POSTs to the client, which exchanges the code', { timeout: 90000 }, async () => {
    const secretFile = path.join(env.dir, 'client-secret');
    fs.writeFileSync(secretFile, `${CLIENT_SECRET}\n`, { mode: 0o600 });
    const { c, startUrl } = await startClient('client-bound', ['--label', 'authrelay client (test)', '--pkce', '--token-url', `${env.as.base}/token`,
      '--client-secret-file', secretFile]);
    const user = await newUser();
    const page = await user.newPage();
    await openStart(page, startUrl, { shotName: 'bound-13-client-confirm.png' });
    const v = await confirmView(page);
    assert.match(v.dest, /^http:\/\/127\.0\.0\.1:\d+\/authrelay\/return$/, 'the client\'s own return listener');
    assert.ok(v.text.includes('\u201cauthrelay client (test)\u201d (supplied by the instance, not verified)'));
    const listener = new URL(v.dest);
    const q = await continueToAs(page);
    assert.equal(q.get('code_challenge_method'), 'S256');
    const cb = page.waitForResponse((r) => isCallback(r.url()));
    const posted = page.waitForRequest((r) => r.method() === 'POST' && r.url() === v.dest);
    await page.getByRole('button', { name: 'Allow', exact: true }).click();
    await checkDeliveryHeaders(await cb);
    checkPosted(await posted, new URLSearchParams((await posted).postData()).get('session'));
    await page.waitForURL(`${listener.origin}/authrelay/done`, { waitUntil: 'load' });
    await checkReadable(page, { title: 'Sign-in complete', text: 'You may close this window' });
    await shot(page, 'bound-13-client-done.png');
    const { code: exit } = await c.wait(40000);
    assert.equal(exit, 0, c.stderr);
    const out = JSON.parse(c.stdout);
    assert.ok(out.access_token, c.stdout);
    remember(out.access_token, out.refresh_token);
    const code = await newestCode();
    const t = JSON.parse((await H.request(`${env.as.base}/_log`)).body).filter((e) => e.path === '/token' && e.params && e.params.code === code);
    assert.equal(t.length, 1, 'one token request for this code');
    assert.equal(t[0].outcome, 'token');
    assert.ok(t[0].params.code_verifier_present && t[0].params.client_secret_present);
    assert.doesNotMatch(String(t[0].user_agent), /Chrome|Mozilla/, 'the client exchanged it, not the browser');
    await user.close();
  });

  it('14. authrelay client --no-listen: the session and release key pasted from the delivery page (JavaScript off)', { timeout: 90000 }, async () => {
    const returnUri = `${env.inst.base}/pasted`;
    const { c, startUrl } = await startClient('client-no-listen', ['--no-listen', '--return-uri', returnUri], { stdin: true });
    const user = await newUser({ javaScriptEnabled: false });
    const page = await user.newPage();
    await openStart(page, startUrl);
    assert.equal((await confirmView(page)).dest, returnUri);
    await continueToAs(page);
    const cb = page.waitForResponse((r) => isCallback(r.url()));
    await page.getByRole('button', { name: 'Allow', exact: true }).click();
    await checkDeliveryHeaders(await cb);
    await page.waitForLoadState('load');
    assert.equal(await page.title(), TITLE.delivery);
    await page.locator('details summary').click();
    const session = await page.locator('#session').textContent();
    const release = await page.locator('#release').textContent();
    remember(session, release);
    await shot(page, 'bound-14-client-paste.png');
    await c.waitFor('stderr', /Paste the session and the release key/, 10000);
    c.proc.stdin.write(`${session}\n${release}\n`);
    c.proc.stdin.end();
    const { code: exit } = await c.wait(40000);
    assert.equal(exit, 0, c.stderr);
    const out = JSON.parse(c.stdout);
    assert.equal(out.status, 'authorized', c.stdout);
    assert.equal(out.code, await newestCode());
    assert.ok(!c.stderr.includes(out.code), 'the code is not on stderr');
    await user.close();
  });

  it('every relay page sent Cross-Origin-Opener-Policy and its CSP; the browser stayed on loopback; no console errors', { timeout: 90000 }, () => {
    assert.ok(relayResponses.length >= 20, `${relayResponses.length} relay responses`);
    for (const r of relayResponses) {
      const h = r.headers();
      const what = `${r.request().method()} ${r.url().slice(0, 60)} ${r.status()}`;
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) assert.equal(h[k], v, `${what}: ${k}`);
      if ((h['content-type'] || '').startsWith('text/html')) {
        assert.equal(h['cross-origin-opener-policy'], 'same-origin', `${what}: COOP`);
        const csp = h['content-security-policy'];
        if (r.url().startsWith(`${env.relay.base}/v1/start`) && r.status() === 200 && r.request().method() === 'GET') assert.equal(csp, CSP_CONFIRM, what);
        else if (isCallback(r.url()) && r.status() === 200) assert.match(csp, /^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/]{43}='; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'$/, what);
        else assert.equal(csp, CSP, what);
      }
    }
    const foreign = requests.filter((q) => !/^(data|about|blob|chrome):/.test(q.url) && !['127.0.0.1', 'localhost'].includes(new URL(q.url).hostname));
    assert.deepEqual(foreign, [], 'nothing outside loopback');
    // refusals (400, 403, 409, 410) are logged by Chromium as failed loads: expected; anything else is not
    const problems = consoleProblems.filter((m) => !/Failed to load resource: the server responded with a status of (400|403|409|410)/.test(m));
    assert.deepEqual(problems, [], 'no console errors, no CSP violations');
  });

  it('the relay\'s log holds no session, token, state, code, release key, label or return_uri, and passes `authrelay audit`', { timeout: 90000 }, async () => {
    await H.stop(env.relay.c, 8000);
    assert.equal(env.relay.c.code, 0, `the relay exits 0 on SIGTERM; stderr: ${env.relay.c.stderr.slice(-1000)}`);
    const all = env.relay.c.stdout + env.relay.c.stderr;
    assert.ok(secrets.size >= 30, `secrets collected: ${secrets.size}`);
    for (const s of secrets) assert.ok(!all.includes(s), `the relay's output contains a secret (${s.slice(0, 12)}...)`);
    for (const s of ['attacker.example', 'xn--80ak6aa92e', I.RETURN_PATH, 'Qorus test instance']) assert.ok(!all.includes(s), `the relay's output contains ${s}`);
    const file = path.join(env.dir, 'relay.stdout.jsonl');
    fs.writeFileSync(file, env.relay.c.stdout);
    const events = env.relay.c.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l).event);
    assert.ok(events.includes('start') && events.includes('callback'), `events: ${[...new Set(events)]}`);
    try {
      execFileSync(H.AUTHRELAY_BIN, ['audit', file], { encoding: 'utf8', timeout: 20000 });
    } catch (e) {
      assert.fail(`authrelay audit failed (${e.status}): ${e.stdout}${e.stderr}`);
    }
  });
});
