// iss.test.js: RFC 9207 on a denial, end to end: an instance validates what it picks up from the real relay with a
// standard client library (oauth4webapi's validateAuthResponse), given the AS's metadata.
//
// A tiny AS (as.js) advertises authorization_response_iss_parameter_supported and puts iss on its error redirect. The
// test plays the browser (the AS's redirect or form_post, then the relay's callback) and the instance (session, pickup,
// validation). The pickup's denied result carries iss; rebuilt into the authorization response's parameters, the library
// accepts the issuer and surfaces the AS's error. A result whose iss names another AS (a mix-up), or lacks it, is refused.
// Version 1 (the instance knows its state) and 1.1 (the locked result, opened with the release key; the relay has checked
// the state, so the instance skips that check), GET and form_post.
//
// usage: tests/providers/run.sh, or node --test tests/providers/ (environment AUTHRELAY_BIN, default build/authrelay)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as oauth from 'oauth4webapi';
import { startAs } from './as.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(process.env.AUTHRELAY_BIN || path.join(here, '..', '..', 'build', 'authrelay'));
const RETURN_URI = 'https://qorus.example.com:8011/grant';
const CLIENT = { client_id: 'qorus-test-client' };

// the relay's --dev certificate is self-signed and ephemeral: trusted for this loopback test only
const agent = new https.Agent({ rejectUnauthorized: false, keepAlive: false });
let relay; // {port, child, log, base}
let tmpdir;
const servers = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** One request to the relay (https://localhost:<port>, connected on 127.0.0.1); never follows redirects. */
function relayRequest(method, target, { headers = {}, body } = {}) {
  const url = new URL(target, relay.base);
  return new Promise((resolve, reject) => {
    const h = { Host: url.host, ...headers };
    if (body !== undefined) h['Content-Length'] = Buffer.byteLength(body);
    const req = https.request(
      { host: '127.0.0.1', port: relay.port, servername: 'localhost', method, path: url.pathname + url.search, headers: h, agent },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(20000, () => req.destroy(new Error(`${method} ${target}: no answer within 20 s`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function startRelay() {
  const port = await freePort();
  const admin = await freePort();
  const keys = path.join(tmpdir, 'keys.json');
  execFileSync(BIN, ['keygen', keys], { stdio: 'ignore' });
  // --dev: its own certificate and the memory store, http authorization servers on loopback allowed;
  // --allow-unbound: version-1 sessions too
  const args = ['serve', '--dev', '--keys', keys, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${admin}`,
    '--threads', '2', '--rate-limit', '0', '--shutdown-grace', '1', '--allow-unbound'];
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  relay = { port, child, log: '', exited: false, base: `https://localhost:${port}` };
  child.stdout.on('data', (d) => (relay.log += d));
  child.stderr.on('data', (d) => (relay.log += d));
  child.on('exit', () => (relay.exited = true));
  const deadline = Date.now() + 15000;
  for (;;) {
    if (relay.exited) throw new Error(`the relay exited:\n${relay.log}`);
    try {
      if ((await relayRequest('GET', '/.well-known/authrelay')).status === 200) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`the relay did not come up within 15 s:\n${relay.log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  assert.ok(fs.existsSync(BIN), `no relay binary at ${BIN} (build it, or set AUTHRELAY_BIN)`);
  tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), 'authrelay-providers-'));
  await startRelay();
});

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  if (relay && !relay.exited) {
    await new Promise((resolve) => {
      const kill = setTimeout(() => relay.child.kill('SIGKILL'), 5000);
      relay.child.on('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      relay.child.kill('SIGTERM');
    });
  }
  if (tmpdir) fs.rmSync(tmpdir, { recursive: true, force: true });
});

process.on('exit', () => {
  if (relay && !relay.exited) relay.child.kill('SIGKILL');
});

/** A tiny AS and its metadata as the instance gets it: RFC 8414 discovery through the library. */
async function authorizationServer(options) {
  const as = await startAs(options);
  servers.push(as);
  const issuer = new URL(as.issuer);
  const response = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true });
  const metadata = await oauth.processDiscoveryResponse(issuer, response);
  assert.equal(metadata.authorization_response_iss_parameter_supported, true);
  return { as, metadata };
}

/** The browser at the AS: GET the authorize URL; a 302's Location, or the form_post page's form. */
async function browserAtAs(authorizeUrl) {
  const res = await fetch(authorizeUrl, { redirect: 'manual' });
  if (res.status === 302) return { method: 'GET', url: res.headers.get('location') };
  assert.equal(res.status, 200, `the AS answered ${res.status}`);
  const html = await res.text();
  const action = /<form method="post" action="([^"]+)"/.exec(html);
  assert.ok(action, 'the form_post page has no form');
  const unescape = (s) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const body = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) body.append(unescape(m[1]), unescape(m[2]));
  return { method: 'POST', url: unescape(action[1]), body: body.toString() };
}

/** The browser at the relay's redirect URI, as the AS sent it (a cookie for 1.1). */
function browserAtRelay(hop, cookie) {
  assert.ok(hop.url.startsWith(`${relay.base}/qorus-oauth2-redirect`), `the AS sent the browser to ${hop.url}`);
  const headers = cookie ? { Cookie: `__Host-authrelay=${cookie}` } : {};
  if (hop.method === 'POST') headers['Content-Type'] = 'application/x-www-form-urlencoded';
  return relayRequest(hop.method, hop.url, { headers, body: hop.body });
}

async function createSession(body) {
  const res = await relayRequest('POST', '/v1/sessions', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 201, res.text);
  return JSON.parse(res.text);
}

async function pickup(session) {
  const res = await relayRequest('GET', session.poll_url, { headers: { Authorization: `Bearer ${session.poll_token}` } });
  assert.equal(res.status, 200, res.text);
  return JSON.parse(res.text);
}

/**
 * What an instance does with a picked-up result before it trusts it: the authorization response's parameters again
 * (code or error and its companions, iss, the extra params), and the state: the session's own in version 1 (the relay
 * checked it against its MAC; a denied result does not repeat it), the result's for an authorized 1.1 result.
 */
function authorizationResponse(result, state) {
  const p = new URLSearchParams();
  for (const k of ['code', 'error', 'error_description', 'error_uri', 'iss']) if (typeof result[k] === 'string') p.set(k, result[k]);
  for (const [k, v] of Object.entries(result.params || {})) p.append(k, v);
  if (state) p.set('state', state);
  return p;
}

/** A version-1 flow through the relay to the picked-up result. */
async function v1Flow(as, { mode = 'query', outcome } = {}) {
  const session = await createSession({ authorization_server: as.metadata.authorization_endpoint, return_uri: RETURN_URI });
  const authorize = new URL(as.metadata.authorization_endpoint);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT.client_id,
    redirect_uri: session.redirect_uri,
    state: session.state,
    scope: 'read write',
    ...(mode === 'form_post' ? { response_mode: 'form_post' } : {}),
    ...(outcome ? { x_outcome: outcome } : {}),
  }).toString();
  const cb = await browserAtRelay(await browserAtAs(authorize.href));
  assert.equal(cb.status, 303, cb.text);
  const result = await pickup(session);
  return { session, result, returned: cb.headers.location };
}

/** The library's verdict on a denial: the AuthorizationResponseError it throws, or a failure. */
function expectAuthorizationError(metadata, params, expectedState) {
  try {
    oauth.validateAuthResponse(metadata, CLIENT, params, expectedState);
  } catch (e) {
    if (e instanceof oauth.AuthorizationResponseError) return e;
    throw e;
  }
  assert.fail('validateAuthResponse accepted an error response');
}

/** The library refuses the response for its issuer: an OperationProcessingError naming iss, not the AS's error. */
function expectIssuerRefused(metadata, params, expectedState, what) {
  assert.throws(
    () => oauth.validateAuthResponse(metadata, CLIENT, params, expectedState),
    (e) => e instanceof oauth.OperationProcessingError && e.code === oauth.INVALID_RESPONSE && /"iss"/.test(e.message),
    what,
  );
}

for (const mode of ['query', 'form_post']) {
  test(`version 1, ${mode}: the denied result carries the AS's iss; the library accepts it and surfaces the error`, async () => {
    const { as, metadata } = await authorizationServer();
    const { session, result, returned } = await v1Flow(as, { mode });
    assert.equal(returned, `${RETURN_URI}?status=error&message=access_denied`);
    assert.deepEqual(result, {
      status: 'denied',
      error: 'access_denied',
      error_description: 'The resource owner denied the request',
      error_uri: `${as.issuer}/errors/access_denied`,
      iss: as.issuer,
    });
    const e = expectAuthorizationError(metadata, authorizationResponse(result, session.state), session.state);
    assert.equal(e.error, 'access_denied');
    assert.equal(e.error_description, 'The resource owner denied the request');
    assert.equal(e.cause.get('iss'), as.issuer);
    assert.equal(e.cause.get('error_uri'), `${as.issuer}/errors/access_denied`);
  });
}

test('version 1: a denial whose iss names another AS (mix-up) is refused by the library', async () => {
  const { metadata: expected } = await authorizationServer(); // the AS the instance meant
  const { as: other } = await authorizationServer(); // the AS that answered
  const { session, result } = await v1Flow(other);
  assert.equal(result.iss, other.issuer); // the relay carries what the AS sent, and judges nothing
  expectIssuerRefused(expected, authorizationResponse(result, session.state), session.state, 'a foreign iss');
});

test('version 1: a denial without iss, from an AS that advertises it, is refused by the library', async () => {
  const { as, metadata } = await authorizationServer({ sendIss: false });
  const { session, result } = await v1Flow(as);
  assert.equal(result.status, 'denied');
  assert.equal(result.iss, undefined);
  expectIssuerRefused(metadata, authorizationResponse(result, session.state), session.state, 'a missing iss');
});

test('version 1: an authorized result with iss passes the same validation and yields the code', async () => {
  const { as, metadata } = await authorizationServer();
  const { session, result } = await v1Flow(as, { outcome: 'approve' });
  assert.equal(result.status, 'authorized');
  assert.equal(result.iss, as.issuer);
  assert.equal(result.state, session.state);
  const params = oauth.validateAuthResponse(metadata, CLIENT, authorizationResponse(result, result.state), session.state);
  assert.equal(params.get('code'), result.code);
});

// ---- protocol 1.1: the confirmation, the callback bound to the browser, the locked result ----

/** AES-256-GCM under the release key, AAD the session id: locked = base64url(0x01 || nonce || ct || tag). */
function unlock(release, sessionId, locked) {
  const key = Buffer.from(release, 'base64url');
  const blob = Buffer.from(locked, 'base64url');
  assert.equal(key.length, 32);
  assert.equal(blob[0], 1);
  const d = crypto.createDecipheriv('aes-256-gcm', key, blob.subarray(1, 13));
  d.setAAD(Buffer.from(sessionId, 'ascii'));
  d.setAuthTag(blob.subarray(blob.length - 16));
  return JSON.parse(Buffer.concat([d.update(blob.subarray(13, blob.length - 16)), d.final()]).toString('utf8'));
}

const hidden = (html, name) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];

async function boundFlow(as, mode) {
  const session = await createSession({
    authorization_server: as.metadata.authorization_endpoint,
    return_uri: RETURN_URI,
    authorize_params: { client_id: CLIENT.client_id, scope: 'read write', ...(mode === 'form_post' ? { response_mode: 'form_post' } : {}) },
  });
  const page = await relayRequest('GET', session.start_url);
  assert.equal(page.status, 200, page.text);
  const cookie = /__Host-authrelay=([^;]+)/.exec([].concat(page.headers['set-cookie'] || []).join('\n'))?.[1];
  const csrf = hidden(page.text, 'csrf');
  assert.ok(cookie && csrf, 'the confirmation page set no cookie or has no CSRF token');
  const t = new URL(session.start_url).searchParams.get('t');
  const go = await relayRequest('POST', '/v1/start', {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: relay.base, Cookie: `__Host-authrelay=${cookie}` },
    body: new URLSearchParams({ t, csrf, action: 'continue' }).toString(),
  });
  assert.equal(go.status, 303, go.text);
  assert.ok(go.headers.location.startsWith(as.metadata.authorization_endpoint), go.headers.location);
  const delivery = await browserAtRelay(await browserAtAs(go.headers.location), cookie);
  assert.equal(delivery.status, 200, delivery.text);
  assert.equal(hidden(delivery.text, 'status'), 'error');
  assert.equal(hidden(delivery.text, 'message'), 'access_denied');
  const release = hidden(delivery.text, 'release');
  assert.ok(release, 'the delivery page has no release key');
  const locked = await pickup(session);
  assert.equal(locked.status, 'locked');
  return unlock(release, session.session, locked.locked);
}

for (const mode of ['query', 'form_post']) {
  test(`version 1.1, ${mode}: the locked denial opens to a result with iss; the library accepts it and surfaces the error`, async () => {
    const { as, metadata } = await authorizationServer();
    const result = await boundFlow(as, mode);
    assert.equal(result.status, 'denied');
    assert.equal(result.iss, as.issuer);
    // the relay verified the state it minted, and a denied result does not repeat it: the instance skips that check
    const e = expectAuthorizationError(metadata, authorizationResponse(result), oauth.skipStateCheck);
    assert.equal(e.error, 'access_denied');
    assert.equal(e.error_description, 'The resource owner denied the request');
  });
}

test('version 1.1: a locked denial from another AS (mix-up) is refused by the library', async () => {
  const { metadata: expected } = await authorizationServer();
  const { as: other } = await authorizationServer();
  const result = await boundFlow(other, 'query');
  expectIssuerRefused(expected, authorizationResponse(result), oauth.skipStateCheck, 'a foreign iss');
});

test('the relay logged none of it: no iss, no error description, no AS port (it stops the relay)', async () => {
  await new Promise((resolve) => {
    const kill = setTimeout(() => relay.child.kill('SIGKILL'), 5000);
    relay.child.on('exit', (code) => {
      clearTimeout(kill);
      assert.equal(code, 0, `the relay exited with ${code}`);
      resolve();
    });
    relay.child.kill('SIGTERM');
  });
  assert.ok(relay.log.length > 0);
  for (const s of servers) assert.ok(!relay.log.includes(s.issuer), `the relay's output names ${s.issuer}`);
  assert.ok(!relay.log.includes('The resource owner denied the request'));
  assert.ok(!relay.log.includes('/errors/access_denied'));
});
