'use strict';
// End to end in a real browser (Debian's chromium through playwright-core): the relay over TLS on Redis, the fake
// AS, an instance's return page, and the instance itself (`authrelay client authorize`, or Node playing it).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const H = require('./helpers.js');
const S = require('./seal.js');

// docs/protocol.md, "Security headers"
const CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'strict-transport-security': 'max-age=31536000',
};
const SCOPE = 'read:jira-work';
const CLIENT_ID = 'cid';
const CLIENT_SECRET = 'test-secret';
const REQUIRE_CLIENT = process.env.AUTHRELAY_E2E_REQUIRE_CLIENT === '1';

const env = {}; // dir, cert, redis, as, relay, inst, browser, discovery
const secrets = new Set(); // every code, state, session id, poll token and token of the run: never in the relay's output
const requests = []; // every URL the browser requested
const relayResponses = []; // every response of the relay to the browser
const consoleProblems = []; // console errors and warnings, page errors (a CSP violation shows up here)
// decided when the file loads: node:test reads `skip` when the tests are declared
const clientOk = fs.existsSync(H.AUTHRELAY_BIN) && H.clientAvailable();

function remember(...values) {
  for (const v of values) if (typeof v === 'string' && v.length >= 8) secrets.add(v);
}

function relayApi(p, opts = {}) {
  return H.request(p.startsWith('https://') ? p : `${env.relay.base}${p}`, { ca: fs.readFileSync(env.cert.cert), ...opts });
}

async function createSession(body) {
  const r = await relayApi('/v1/sessions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(r.status, 201, r.body);
  const s = JSON.parse(r.body);
  remember(s.session, s.state, s.poll_token);
  return s;
}

const pickup = (s, wait = 0, ms = 40000) =>
  relayApi(s.poll_url, { headers: { Authorization: `Bearer ${s.poll_token}`, ...(wait ? { Prefer: `wait=${wait}` } : {}) }, ms });
const deleteSession = (s) => relayApi(s.poll_url, { method: 'DELETE', headers: { Authorization: `Bearer ${s.poll_token}` } });

function pkce() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  return { verifier, challenge: crypto.createHash('sha256').update(verifier).digest('base64url') };
}

function authorizeUrl(s, challenge) {
  const q = new URLSearchParams({ response_type: 'code', client_id: CLIENT_ID, redirect_uri: s.redirect_uri, state: s.state, scope: SCOPE,
    audience: 'api.atlassian.com', prompt: 'consent' });
  if (challenge) {
    q.set('code_challenge', challenge);
    q.set('code_challenge_method', 'S256');
  }
  return `${env.as.base}/authorize?${q}`;
}

async function asLog() {
  return JSON.parse((await H.request(`${env.as.base}/_log`)).body);
}

/** The code the fake AS issued for this state (its decision log entry). */
async function issuedCodeFor(state) {
  const codes = JSON.parse((await H.request(`${env.as.base}/_codes`)).body);
  const log = await asLog();
  const entry = log.filter((e) => e.path === '/authorize/decision' && e.code).map((e) => e.code);
  const c = codes.filter((x) => entry.includes(x.code));
  // the state is not stored with the code; the newest code is this flow's (flows run one after another)
  assert.ok(c.length, `no code issued for state ${state}`);
  return c.sort((a, b) => b.issued - a.issued)[0].code;
}

function checkSecurityHeaders(headers, what, { html }) {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) assert.equal(headers[k], v, `${what}: ${k}`);
  if (html) assert.equal(headers['content-security-policy'], CSP, `${what}: Content-Security-Policy`);
  assert.equal(headers['access-control-allow-origin'], undefined, `${what}: no CORS`);
}

/** The page renders readably: the expected title, the text visible on screen in a legible size. */
async function checkReadable(page, { title, text, shot }) {
  const t = await page.title();
  assert.ok(t.trim().length > 0, 'title non-empty');
  if (title) assert.equal(t, title);
  const loc = page.getByText(text, { exact: false }).first();
  assert.ok(await loc.isVisible(), `"${text}" visible`);
  const box = await loc.boundingBox();
  const vp = page.viewportSize();
  assert.ok(box && box.width > 0 && box.height > 0 && box.y >= 0 && box.y + box.height <= vp.height, `"${text}" on screen`);
  const style = await loc.evaluate((el) => {
    const cs = getComputedStyle(el);
    return { size: parseFloat(cs.fontSize), color: cs.color, vis: cs.visibility, opacity: cs.opacity };
  });
  assert.ok(style.size >= 12, `font size ${style.size}`);
  assert.equal(style.vis, 'visible');
  assert.notEqual(style.opacity, '0');
  if (shot) {
    fs.mkdirSync(H.ARTIFACTS, { recursive: true });
    const file = path.join(H.ARTIFACTS, shot);
    await page.screenshot({ path: file, fullPage: true });
    assert.ok(fs.statSync(file).size > 2000, `${shot} has content`);
  }
}

/**
 * The user's part: open the authorize URL, check the consent page, click the button, follow the redirects.
 * Returns the page (left on the last page) and the final main-frame response.
 */
async function userFlow(url, button, { consentShot } = {}) {
  const page = await env.browser.newPage();
  const r = await page.goto(url, { waitUntil: 'load' });
  assert.equal(r.status(), 200);
  await checkReadable(page, { title: 'Authorize Qorus', text: 'asks for access', shot: consentShot });
  assert.ok(await page.getByText(CLIENT_ID, { exact: true }).isVisible(), 'the client id is shown');
  assert.ok(await page.getByText(SCOPE, { exact: true }).isVisible(), 'the scope is shown');
  const [nav] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load', timeout: 20000 }),
    page.getByRole('button', { name: button, exact: true }).click(),
  ]);
  return { page, response: nav };
}

/** The chain of the last navigation's redirects, oldest first. */
function redirectChain(response) {
  const chain = [];
  for (let req = response.request(); req; req = req.redirectedFrom()) chain.unshift(req);
  return chain;
}

/** Checks that the relay's callback answered 303 to return_uri + status, with no code or state in it. */
async function checkRelayRedirect(response, expectedLocation, code, state) {
  const chain = redirectChain(response);
  const relayReq = chain.find((q) => q.url().startsWith(`${env.relay.base}/qorus-oauth2-redirect`));
  assert.ok(relayReq, `the browser passed through the relay: ${chain.map((q) => q.url().slice(0, 80)).join(' -> ')}`);
  const rr = await relayReq.response();
  assert.equal(rr.status(), 303);
  const h = await rr.allHeaders();
  assert.equal(h.location, expectedLocation);
  if (code) assert.ok(!h.location.includes(code));
  if (state) assert.ok(!h.location.includes(state));
  checkSecurityHeaders(h, 'relay 303', { html: false });
  assert.equal(response.url(), expectedLocation);
}

function checkNoForeignRequests() {
  const foreign = requests.filter((u) => {
    if (/^(data|about|blob|chrome|chrome-extension):/.test(u)) return false;
    const host = new URL(u).hostname;
    return !['127.0.0.1', 'localhost', '[::1]'].includes(host);
  });
  assert.deepEqual(foreign, [], 'the browser requested nothing outside 127.0.0.1/localhost');
}

describe('authrelay end to end in chromium', { timeout: 300000 }, () => {
  before(async () => {
    assert.ok(fs.existsSync(H.AUTHRELAY_BIN), `AUTHRELAY_BIN ${H.AUTHRELAY_BIN} missing: build it first`);
    assert.ok(fs.existsSync(H.CHROMIUM), `${H.CHROMIUM} missing: apt-get install -y chromium`);
    if (!clientOk && REQUIRE_CLIENT) throw new Error('`authrelay client` is missing and AUTHRELAY_E2E_REQUIRE_CLIENT=1');
    env.dir = H.tmpDir('authrelay-e2e-');
    env.cert = H.makeCert(env.dir);
    env.redis = await H.startRedis(env.dir);
    env.as = await H.startFakeAs(['--client-secret', CLIENT_SECRET]);
    env.relayLog = path.join(env.dir, 'relay.out');
    // these flows are version 1 (the instance sends the browser to the AS itself): a 1.1 relay needs --allow-unbound
    env.relay = await H.startRelay({ dir: env.dir, redisUrl: env.redis.url, cert: env.cert.cert, key: env.cert.key, logFile: env.relayLog,
      extraArgs: ['--allow-unbound'] });
    env.inst = await H.startInstancePage();
    env.browser = await H.launchBrowser();
    env.browser.on('request', (q) => requests.push(q.url()));
    env.browser.on('page', (p) => {
      p.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') consoleProblems.push(`${p.url().slice(0, 60)}: ${m.text()}`);
      });
      p.on('pageerror', (e) => consoleProblems.push(`${p.url().slice(0, 60)}: ${e.message}`));
    });
    env.browser.on('response', (r) => {
      if (r.url().startsWith(env.relay.base)) relayResponses.push(r);
    });
    const d = await relayApi('/.well-known/authrelay');
    assert.equal(d.status, 200);
    env.discovery = JSON.parse(d.body);
    assert.equal(env.discovery.redirect_uri, `${env.relay.base}/qorus-oauth2-redirect`);
  });

  after(async () => {
    if (env.browser) await env.browser.close().catch(() => {});
    if (env.inst) await env.inst.close();
    await H.cleanup();
  });

  it('Node as the instance, sealed: consent, Allow, relay 303 to /grant, the long-poll wakes, seal.js opens it, token exchange', async () => {
    const kp = S.generateKeyPair();
    const s = await createSession({ authorization_server: `${env.as.base}/authorize`, return_uri: env.inst.returnUri, seal_key: kp.publicKey.toString('base64url') });
    assert.equal(s.redirect_uri, env.discovery.redirect_uri);
    const { verifier, challenge } = pkce();
    const waiting = pickup(s, 25); // already waiting when the callback lands
    const { page, response } = await userFlow(authorizeUrl(s, challenge), 'Allow', { consentShot: 'consent.png' });
    const code = await issuedCodeFor(s.state);
    remember(code);
    await checkRelayRedirect(response, `${env.inst.returnUri}?status=success`, code, s.state);
    await checkReadable(page, { title: 'Qorus - OAuth2 authorization', text: 'Authorization: success', shot: 'instance-success.png' });
    assert.equal(env.inst.seen.at(-1).referer, null, 'no Referer reaches the instance');
    await page.close();

    const r = await waiting;
    assert.equal(r.status, 200, r.body); // woken by the callback: a 202 would mean the 25 s wait ran out
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(r.headers['preference-applied'], 'wait=25');
    const body = JSON.parse(r.body);
    assert.deepEqual(Object.keys(body).sort(), ['sealed', 'status']);
    assert.equal(body.status, 'sealed');
    assert.ok(!r.body.includes(code), 'the code is not in clear in the pickup');
    const result = JSON.parse(S.unseal(kp.privateKey, body.sealed, s.session).toString('utf8'));
    assert.equal(result.status, 'authorized');
    assert.equal(result.code, code);
    assert.equal(result.state, s.state);
    assert.equal(result.iss, env.as.base);
    assert.throws(() => S.unseal(S.generateKeyPair().privateKey, body.sealed, s.session), 'another key cannot open it');
    assert.throws(() => S.unseal(kp.privateKey, body.sealed, 'AAAAAAAAAAAAAAAAAAAAAA'), 'another session id cannot open it');
    const again = await pickup(s);
    assert.equal(again.status, 200);
    assert.equal(JSON.parse(again.body).sealed, body.sealed, 'a second read within 60 s returns the same result');

    const t = await H.request(`${env.as.base}/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: result.code, redirect_uri: s.redirect_uri, client_id: CLIENT_ID, code_verifier: verifier }).toString() });
    assert.equal(t.status, 200, t.body);
    const tok = JSON.parse(t.body);
    remember(tok.access_token, tok.refresh_token);
    assert.equal((await deleteSession(s)).status, 204);
    assert.equal((await pickup(s)).status, 404);
  });

  it('Node as the instance, sealed, the callback played without a browser: pickup unseals with seal.js', async () => {
    const kp = S.generateKeyPair();
    const s = await createSession({ authorization_server: `${env.as.base}/authorize`, seal_key: kp.publicKey.toString('base64url') });
    const code = `pl.${crypto.randomBytes(3000).toString('base64url')}.x`; // a long JWT-like code
    remember(code);
    const cb = await relayApi(`${s.redirect_uri}?${new URLSearchParams({ code, state: s.state, iss: env.as.base })}`);
    assert.equal(cb.status, 200, 'no return_uri: the done page');
    checkSecurityHeaders(cb.headers, 'done page', { html: true });
    assert.ok(!cb.body.includes(code) && !cb.body.includes(s.state));
    const r = await pickup(s, 5);
    assert.equal(r.status, 200, r.body);
    const result = JSON.parse(S.unseal(kp.privateKey, JSON.parse(r.body).sealed, s.session).toString('utf8'));
    assert.deepEqual(result, { status: 'authorized', code, state: s.state, iss: env.as.base });
    assert.equal((await deleteSession(s)).status, 204);
  });

  it('the callback as a plain HTTPS request: 303 to return_uri only, no code or state in the answer', async () => {
    const s = await createSession({ authorization_server: `${env.as.base}/authorize`, return_uri: `${env.inst.returnUri}?tab=oauth` });
    const code = `cb-${crypto.randomBytes(24).toString('base64url')}`;
    remember(code);
    const cb = await relayApi(`${s.redirect_uri}?${new URLSearchParams({ state: s.state, code })}`);
    assert.equal(cb.status, 303);
    assert.equal(cb.headers.location, `${env.inst.returnUri}?tab=oauth&status=success`);
    checkSecurityHeaders(cb.headers, 'relay 303', { html: false });
    assert.ok(!cb.body.includes(code) && !cb.body.includes(s.state), 'the 303 body carries neither code nor state');
    const again = await relayApi(`${s.redirect_uri}?${new URLSearchParams({ state: s.state, code: 'second-code-123' })}`);
    assert.equal(again.status, 409, 'a second callback: 409, the first result stands');
    checkSecurityHeaders(again.headers, '409 page', { html: true });
    const r = JSON.parse((await pickup(s)).body);
    assert.equal(r.code, code);
    // response_mode=form_post is treated the same
    const s2 = await createSession({ authorization_server: `${env.as.base}/authorize`, return_uri: env.inst.returnUri });
    const fp = await relayApi(s2.redirect_uri, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ code: `${code}-fp`, state: s2.state }).toString() });
    assert.equal(fp.status, 303);
    assert.equal(fp.headers.location, `${env.inst.returnUri}?status=success`);
    assert.equal(JSON.parse((await pickup(s2)).body).code, `${code}-fp`);
    const noauth = await relayApi(s2.poll_url);
    assert.equal(noauth.status, 401);
    assert.match(noauth.headers['www-authenticate'], /^Bearer/);
    assert.equal((await deleteSession(s2)).status, 204);
    const bad = await relayApi(`${s.redirect_uri}?${new URLSearchParams({ state: `${s.state.slice(0, -2)}AA`, code })}`);
    assert.equal(bad.status, 400, 'a mangled state');
    checkSecurityHeaders(bad.headers, '400 page', { html: true });
    assert.equal((await deleteSession(s)).status, 204);
  });

  it('Node as the instance, sealed, Deny: /grant?status=error&message=access_denied, a sealed denied result', async () => {
    const kp = S.generateKeyPair();
    const s = await createSession({ authorization_server: `${env.as.base}/authorize`, return_uri: env.inst.returnUri, seal_key: kp.publicKey.toString('base64url') });
    const { page, response } = await userFlow(authorizeUrl(s), 'Deny');
    await checkRelayRedirect(response, `${env.inst.returnUri}?status=error&message=access_denied`, null, s.state);
    await checkReadable(page, { title: 'Qorus - OAuth2 authorization', text: 'Authorization: error (access_denied)', shot: 'instance-denied.png' });
    await page.close();
    const r = await pickup(s, 5);
    assert.equal(r.status, 200, r.body);
    const result = JSON.parse(S.unseal(kp.privateKey, JSON.parse(r.body).sealed, s.session).toString('utf8'));
    assert.equal(result.status, 'denied');
    assert.equal(result.error, 'access_denied');
    assert.equal(result.error_description, 'The user denied access');
    assert.equal((await deleteSession(s)).status, 204);
  });

  it('no return_uri: the relay\'s "done" page after Allow (CSP of protocol.md), unsealed pickup', async () => {
    const s = await createSession({ authorization_server: `${env.as.base}/authorize` });
    const { page, response } = await userFlow(authorizeUrl(s), 'Allow');
    const code = await issuedCodeFor(s.state);
    remember(code);
    assert.equal(response.status(), 200);
    assert.ok(response.url().startsWith(`${env.relay.base}/qorus-oauth2-redirect?`));
    checkSecurityHeaders(await response.allHeaders(), 'done page', { html: true });
    await checkReadable(page, { title: 'Authorization complete', text: 'You may close this window', shot: 'relay-done.png' });
    const html = await page.content();
    assert.ok(!html.includes(code) && !html.includes(s.state), 'the page carries neither code nor state');
    await page.close();
    const r = await pickup(s, 5);
    assert.equal(r.status, 200, r.body);
    const result = JSON.parse(r.body);
    assert.equal(result.status, 'authorized');
    assert.equal(result.code, code);
    assert.equal(result.state, s.state);
    assert.equal((await deleteSession(s)).status, 204);
  });

  it('no return_uri, Deny: the relay\'s "not granted" page, a denied pickup', async () => {
    const s = await createSession({ authorization_server: `${env.as.base}/authorize` });
    const { page, response } = await userFlow(authorizeUrl(s), 'Deny');
    assert.equal(response.status(), 200);
    checkSecurityHeaders(await response.allHeaders(), 'denied page', { html: true });
    await checkReadable(page, { title: 'Authorization not granted', text: 'did not grant access', shot: 'relay-denied.png' });
    assert.ok(!(await page.content()).includes(s.state));
    await page.close();
    const r = JSON.parse((await pickup(s, 5)).body);
    assert.equal(r.status, 'denied');
    assert.equal(r.error, 'access_denied');
    assert.equal((await deleteSession(s)).status, 204);
  });

  it('a deleted session: the relay\'s 410 page (title, message, CSP)', async () => {
    const s = await createSession({ authorization_server: `${env.as.base}/authorize`, return_uri: env.inst.returnUri });
    assert.equal((await deleteSession(s)).status, 204);
    const page = await env.browser.newPage();
    const r = await page.goto(`${s.redirect_uri}?${new URLSearchParams({ code: 'late-code-0123456789', state: s.state })}`);
    assert.equal(r.status(), 410);
    checkSecurityHeaders(await r.allHeaders(), '410 page', { html: true });
    await checkReadable(page, { title: 'Authorization expired', text: 'has expired or was cancelled', shot: 'relay-expired-410.png' });
    assert.ok(!(await page.content()).includes(s.state));
    assert.ok(!env.inst.seen.some((x) => x.query.status && x.query.status !== 'success' && x.query.status !== 'error'));
    await page.close();
  });

  /** Runs `authrelay client authorize` and plays the user; returns {code, out, exit, page}. */
  async function clientFlow(name, { seal = false, token = false, secret = true, pkce: withPkce = false, button = 'Allow' } = {}) {
    // --unbound: the client plays a version-1 instance (it builds the authorize URL); 1.1 is in bound.test.js
    const args = ['client', 'authorize', '--unbound', '--relay', env.relay.base, '--cacert', env.cert.cert, '--authorize-url', `${env.as.base}/authorize`,
      '--client-id', CLIENT_ID, '--scope', SCOPE, '--audience', 'api.atlassian.com', '--prompt', 'consent', '--return-uri', env.inst.returnUri];
    if (seal) args.push('--seal');
    if (withPkce) args.push('--pkce');
    if (token) {
      args.push('--token-url', `${env.as.base}/token`);
      if (secret) {
        const f = path.join(env.dir, 'client-secret');
        fs.writeFileSync(f, `${CLIENT_SECRET}\n`, { mode: 0o600 });
        args.push('--client-secret-file', f);
      }
    }
    // no display: the client must not hand the URL to xdg-open
    const c = H.start(H.AUTHRELAY_BIN, args, { name: `client-${name}`, env: { DISPLAY: '', WAYLAND_DISPLAY: '' } });
    const m = await c.waitFor('stderr', /^Open: (\S+)\r?$/m, 20000);
    const url = new URL(m[1]);
    assert.equal(url.origin + url.pathname, `${env.as.base}/authorize`);
    const q = url.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), CLIENT_ID);
    assert.equal(q.get('redirect_uri'), env.discovery.redirect_uri);
    assert.equal(q.get('scope'), SCOPE);
    assert.equal(q.get('audience'), 'api.atlassian.com');
    assert.equal(q.get('prompt'), 'consent');
    assert.match(q.get('state'), /^[A-Za-z0-9_-]{1,128}$/);
    if (withPkce) {
      assert.equal(q.get('code_challenge_method'), 'S256');
      assert.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
    } else {
      assert.equal(q.get('code_challenge'), null);
    }
    remember(q.get('state'));
    const { page, response } = await userFlow(m[1], button);
    const code = button === 'Allow' ? await issuedCodeFor(q.get('state')) : null;
    remember(code);
    const expected = button === 'Allow' ? `${env.inst.returnUri}?status=success` : `${env.inst.returnUri}?status=error&message=access_denied`;
    await checkRelayRedirect(response, expected, code, q.get('state'));
    const { code: exit } = await c.wait(40000);
    if (process.env.E2E_DEBUG) console.error(`[${name}] exit ${exit}\nstdout: ${c.stdout.slice(0, 400)}\nstderr: ${c.stderr.slice(0, 1200)}`);
    return { c, code, exit, out: c.stdout, err: c.stderr, page, authorize: url };
  }

  const clientSkip = () => (clientOk ? false : '`authrelay client` not built yet (set AUTHRELAY_E2E_REQUIRE_CLIENT=1 to fail instead)');

  it('authrelay client, unsealed: Allow, exit 0, prints the code', { skip: clientSkip() }, async () => {
    const f = await clientFlow('plain');
    await checkReadable(f.page, { text: 'Authorization: success', shot: 'client-instance-success.png' });
    await f.page.close();
    assert.equal(f.exit, 0, f.err);
    const out = JSON.parse(f.out);
    assert.equal(out.status, 'authorized', f.out);
    assert.equal(out.code, f.code);
  });

  it('authrelay client --seal: Allow, exit 0, prints the code it unsealed', { skip: clientSkip() }, async () => {
    const f = await clientFlow('sealed', { seal: true });
    await f.page.close();
    assert.equal(f.exit, 0, f.err);
    const out = JSON.parse(f.out);
    assert.equal(out.status, 'authorized', f.out);
    assert.equal(out.code, f.code);
  });

  it('authrelay client --seal --token-url: the client exchanges the code at the AS itself', { skip: clientSkip() }, async () => {
    const before = requests.length;
    const f = await clientFlow('token', { seal: true, token: true });
    await f.page.close();
    assert.equal(f.exit, 0, f.err);
    const out = JSON.parse(f.out);
    assert.ok(out.access_token, f.out);
    remember(out.access_token, out.refresh_token);
    assert.equal(out.token_type, 'Bearer');
    const tokenReqs = (await asLog()).filter((e) => e.path === '/token' && e.params && e.params.code === f.code);
    assert.equal(tokenReqs.length, 1, 'one token request for this code');
    const t = tokenReqs[0];
    assert.equal(t.outcome, 'token');
    assert.equal(t.access_token, out.access_token);
    assert.equal(t.params.client_id, CLIENT_ID);
    assert.equal(t.params.redirect_uri, env.discovery.redirect_uri);
    assert.ok(t.params.client_secret_present, 'authenticated with the secret file');
    assert.doesNotMatch(String(t.user_agent), /Chrome|Mozilla/, 'the token request came from the client, not the browser');
    assert.ok(!requests.slice(before).some((u) => u.includes('/token')), 'the browser never called /token');
    assert.ok(!f.err.includes(out.access_token), 'the token is not on stderr');
  });

  it('authrelay client --pkce --token-url, no secret: the verifier alone authenticates the exchange', { skip: clientSkip() }, async () => {
    const f = await clientFlow('pkce', { token: true, secret: false, pkce: true });
    await f.page.close();
    assert.equal(f.exit, 0, f.err);
    const out = JSON.parse(f.out);
    assert.ok(out.access_token, f.out);
    remember(out.access_token, out.refresh_token);
    const t = (await asLog()).filter((e) => e.path === '/token' && e.params && e.params.code === f.code);
    assert.equal(t.length, 1);
    assert.equal(t[0].outcome, 'token');
    assert.ok(t[0].params.code_verifier_present);
    assert.ok(!t[0].params.client_secret_present);
  });

  it('authrelay client: Deny lands on /grant?status=error&message=access_denied, exit 3', { skip: clientSkip() }, async () => {
    const f = await clientFlow('denied', { button: 'Deny' });
    await checkReadable(f.page, { text: 'Authorization: error (access_denied)', shot: 'client-instance-denied.png' });
    await f.page.close();
    assert.equal(f.exit, 3, f.err);
    const out = JSON.parse(f.out);
    assert.equal(out.status, 'denied', f.out);
    assert.equal(out.error, 'access_denied');
  });

  it('every HTML page of the relay carried the CSP of protocol.md; the browser stayed on loopback', () => {
    assert.ok(relayResponses.length >= 3);
    for (const r of relayResponses) {
      const h = r.headers();
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) assert.equal(h[k], v, `${r.url().slice(0, 60)}: ${k}`);
      if ((h['content-type'] || '').startsWith('text/html')) assert.equal(h['content-security-policy'], CSP);
    }
    checkNoForeignRequests();
    // the 410 page answers 410: Chromium logs that status as a failed resource load, which is expected
    const problems = consoleProblems.filter((m) => !/status of 410/.test(m));
    assert.deepEqual(problems, [], 'no console errors, no CSP violations');
  });

  it('the relay\'s log holds no code, state, session, poll token or token, and passes `authrelay audit`', async () => {
    await H.stop(env.relay.c, 8000);
    assert.equal(env.relay.c.code, 0, `the relay exits 0 on SIGTERM; stderr: ${env.relay.c.stderr.slice(-1000)}`);
    const all = env.relay.c.stdout + env.relay.c.stderr;
    assert.ok(secrets.size >= 10, `secrets collected: ${secrets.size}`);
    for (const s of secrets) assert.ok(!all.includes(s), `the relay's output contains a secret (${s.slice(0, 12)}...)`);
    const stdoutFile = path.join(env.dir, 'relay.stdout.jsonl');
    fs.writeFileSync(stdoutFile, env.relay.c.stdout);
    const lines = env.relay.c.stdout.split('\n').filter(Boolean);
    assert.ok(lines.some((l) => JSON.parse(l).event === 'callback'), 'the log has callback events');
    let audit;
    try {
      audit = execFileSync(H.AUTHRELAY_BIN, ['audit', stdoutFile], { encoding: 'utf8', timeout: 20000 });
    } catch (e) {
      assert.fail(`authrelay audit failed (${e.status}): ${e.stdout}${e.stderr}`);
    }
    assert.match(audit, /callback/);
  });
});
