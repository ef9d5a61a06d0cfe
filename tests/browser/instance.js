'use strict';
// instance.js: a Qorus instance as protocol 1.1 wants it (docs/protocol.md, "Version 1.1: bound flows"), in Node, on
// 127.0.0.1. It creates sessions at the relay, sends its user to start_url, and serves the return handler that the
// relay's delivery page POSTs to: it accepts that cross-site POST without any cookie, discards a release for a session
// it did not create, long-polls the pickup, opens the locked result with the release key, checks it, exchanges the code
// at the AS itself (PKCE), acknowledges with DELETE, and sends its user on to its own UI page /grant.
//
//   GET  /connect?flow=ID      303 to that flow's start_url (the instance's "Connect" link)
//   POST /authrelay/return     the return handler (application/x-www-form-urlencoded: session, status, message, release)
//   GET  /grant?status=...     its UI: "Connected" on success, "Not connected (<message>)" otherwise
const crypto = require('node:crypto');
const http = require('node:http');
const H = require('./helpers.js');
const S = require('./seal.js');

const RETURN_PATH = '/authrelay/return';

/**
 * Opens a locked result (protocol.md, "The callback in 1.1") with seal.js's unlock: base64url(0x01 || nonce12 || ct ||
 * tag16), AES-256-GCM under the release key, AAD = the session id. The plaintext as a string; throws on any failure.
 */
const unlock = (release, locked, session) => S.unlock(release, locked, session).toString('utf8');

const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]);

function readBody(req, max = 16384) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > max) {
        reject(new Error('body too large'));
        req.destroy();
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * Starts an instance. relay: {base, ca (PEM)}; as: {base, issuer}; clientId, clientSecret (optional: PKCE alone
 * otherwise), name (its label). Resolves to an object:
 *   returnUri, base, port
 *   create(opts) -> the flow {id, session (the relay's 201), verifier, connectUrl}; opts: label, scope, audience,
 *       responseMode, returnUri (another instance's, to play an attacker), params (more authorize_params)
 *   flows: Map session id -> flow; after the handler ran, flow.outcome = {status, message, result?, token?}
 *   events: what the handler did, in order: {kind: 'accepted'|'discarded'|'failed', session, ...}
 *   probe: test-only record of what the handler threw away (the release of a session it did not create), so that a
 *       test can show the relay handed the key to this handler and nowhere else; the handler itself never uses it
 *   grants: every GET /grant, with whether the instance's SameSite=Lax cookie came along
 *   returns: every request to the return handler (method, content type, Origin, Referer, cookie presence)
 *   holdNext(): the next POST to the return handler waits; returns {arrived (its raw body), release()}
 *   close()
 */
async function startInstance({ relay, as, clientId, clientSecret, name = 'Qorus test instance' }) {
  const flows = new Map(); // session id -> flow
  const byId = new Map(); // flow id -> flow
  const events = [];
  const probe = [];
  const grants = [];
  const returns = [];
  let base = '';
  let holder = null; // holdNext(): the next POST to the return handler waits for release()
  const ca = relay.ca;

  /** The next POST to the return handler waits until release() (tests photograph the page it comes from). */
  function holdNext() {
    let release;
    let arrived;
    const h = { gate: new Promise((r) => (release = r)), arrived: new Promise((r) => (arrived = r)) };
    h.arrive = arrived;
    holder = h;
    return { arrived: h.arrived, release };
  }

  const relayReq = (url, opts = {}) => H.request(url, { ca, ...opts });

  async function create(opts = {}) {
    const verifier = crypto.randomBytes(32).toString('base64url');
    const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
    const ap = { client_id: clientId, scope: opts.scope ?? 'read:jira-work offline_access', code_challenge: challenge, code_challenge_method: 'S256',
      ...(opts.audience === null ? {} : { audience: opts.audience ?? 'api.atlassian.com' }), ...(opts.params || {}) };
    if (opts.responseMode) ap.response_mode = opts.responseMode;
    const body = { authorization_server: `${as.base}/authorize`, return_uri: opts.returnUri ?? `${base}${RETURN_PATH}`, authorize_params: ap };
    const label = opts.label === undefined ? name : opts.label;
    if (label !== null) body.label = label;
    const r = await relayReq(`${relay.base}/v1/sessions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    if (r.status !== 201) throw new Error(`POST /v1/sessions: ${r.status} ${r.body}`);
    const session = JSON.parse(r.body);
    const flow = { id: crypto.randomBytes(9).toString('base64url'), session, verifier, request: body, outcome: null };
    flow.connectUrl = `${base}/connect?flow=${flow.id}`;
    // an attacker's instance keeps its flows too: only the return handler of the instance that created them accepts them
    flows.set(session.session, flow);
    byId.set(flow.id, flow);
    return flow;
  }

  /** The pickup, long-polled until it is no longer pending (at most ms). */
  async function pickup(flow, ms = 30000) {
    const end = Date.now() + ms;
    for (;;) {
      const left = Math.max(0, Math.min(25, Math.floor((end - Date.now()) / 1000)));
      const r = await relayReq(flow.session.poll_url, { headers: { Authorization: `Bearer ${flow.session.poll_token}`, Prefer: `wait=${left}` }, ms: (left + 10) * 1000 });
      if (r.status !== 202 || Date.now() >= end) return r;
    }
  }

  /** Checks the opened result and exchanges the code; returns {status, message, result, token}. */
  async function finishFlow(flow, posted) {
    const r = await pickup(flow);
    if (r.status !== 200) return { status: 'error', message: `pickup_${r.status}` };
    const body = JSON.parse(r.body);
    if (body.status !== 'locked' || typeof body.locked !== 'string') return { status: 'error', message: 'not_locked', pickup: body };
    let result;
    try {
      result = JSON.parse(unlock(posted.release, body.locked, flow.session.session));
    } catch (e) {
      return { status: 'error', message: 'unlock_failed', detail: e.message };
    }
    // RFC 9207: the issuer must be the AS this flow was started with, on errors too
    if (result.iss !== undefined && result.iss !== as.issuer) return { status: 'error', message: 'wrong_issuer', result };
    if (result.status === 'denied') {
      await relayReq(flow.session.poll_url, { method: 'DELETE', headers: { Authorization: `Bearer ${flow.session.poll_token}` } });
      return { status: 'error', message: result.error, result };
    }
    if (result.status !== 'authorized' || typeof result.code !== 'string' || !result.code) return { status: 'error', message: 'bad_result', result };
    // the form's own fields are not authenticated: they must agree with what the lock holds
    if (posted.status !== 'success') return { status: 'error', message: 'status_mismatch', result };
    const form = { grant_type: 'authorization_code', code: result.code, redirect_uri: flow.session.redirect_uri, client_id: clientId, code_verifier: flow.verifier };
    if (clientSecret) form.client_secret = clientSecret;
    const t = await H.request(`${as.base}/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
    if (t.status !== 200) return { status: 'error', message: 'token_exchange_failed', result, tokenResponse: t.body };
    const d = await relayReq(flow.session.poll_url, { method: 'DELETE', headers: { Authorization: `Bearer ${flow.session.poll_token}` } });
    return { status: 'success', result, token: JSON.parse(t.body), acknowledged: d.status };
  }

  async function handleReturn(req, res) {
    const ct = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
    const raw = await readBody(req);
    if (holder && req.method === 'POST') {
      const h = holder;
      holder = null;
      h.arrive(raw);
      await h.gate;
    }
    const hasLax = /(?:^|;\s*)qorus_ui=/.test(req.headers.cookie || '');
    returns.push({ method: req.method, contentType: ct, origin: req.headers.origin ?? null, referer: req.headers.referer ?? null, laxCookie: hasLax });
    const redirect = (q) => {
      res.writeHead(303, { Location: `${base}/grant?${new URLSearchParams(q)}`, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' });
      res.end();
    };
    if (req.method !== 'POST' || ct !== 'application/x-www-form-urlencoded') {
      events.push({ kind: 'failed', reason: 'not a form POST' });
      return redirect({ status: 'error', message: 'bad_request' });
    }
    const f = Object.fromEntries(new URLSearchParams(raw));
    const flow = typeof f.session === 'string' ? flows.get(f.session) : undefined;
    if (!flow || flow.outcome) {
      // not a session this instance created (or one already finished): the release is thrown away, unused
      probe.push({ session: f.session, release: f.release, status: f.status });
      events.push({ kind: 'discarded', session: f.session });
      return redirect({ status: 'error', message: 'unknown_session' });
    }
    if (typeof f.release !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(f.release)) {
      events.push({ kind: 'failed', session: f.session, reason: 'no release key' });
      return redirect({ status: 'error', message: 'bad_request' });
    }
    const out = await finishFlow(flow, f);
    if (out.status === 'success' || out.message !== 'unlock_failed') flow.outcome = out; // a wrong key leaves the flow open
    events.push({ kind: out.status === 'success' ? 'accepted' : 'failed', session: f.session, message: out.message, posted: { status: f.status, message: f.message } });
    return redirect(out.status === 'success' ? { status: 'success' } : { status: 'error', message: out.message });
  }

  function handleGrant(u, req, res) {
    const status = u.searchParams.get('status') || '(none)';
    const message = u.searchParams.get('message');
    grants.push({ status, message, laxCookie: /(?:^|;\s*)qorus_ui=/.test(req.headers.cookie || '') });
    const text = status === 'success' ? 'Connected' : `Not connected${message ? ` (${message})` : ''}`;
    const html =
      '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Qorus - OAuth2 authorization</title>' +
      '<style>body{font-family:system-ui,sans-serif;margin:3rem;color:#172b4d}#status{font-size:1.5rem}</style></head>' +
      `<body><h1>Qorus Integration Engine</h1><p>${esc(name)}</p><p id="status">${esc(text)}</p></body></html>`;
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'" });
    res.end(html);
  }

  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://instance.invalid');
    const fail = (e) => {
      events.push({ kind: 'failed', reason: e.message });
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end('error');
      }
    };
    if (u.pathname === RETURN_PATH) return handleReturn(req, res).catch(fail);
    if (u.pathname === '/grant' && req.method === 'GET') return handleGrant(u, req, res);
    if (u.pathname === '/connect' && req.method === 'GET') {
      const flow = byId.get(u.searchParams.get('flow') || '');
      if (!flow) {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        return res.end('unknown flow');
      }
      // the instance's own session cookie, SameSite=Lax: the relay's POST back is cross-site and will not carry it
      res.writeHead(303, { Location: flow.session.start_url, 'Cache-Control': 'no-store', 'Set-Cookie': `qorus_ui=${flow.id}; Path=/; HttpOnly; SameSite=Lax` });
      return res.end();
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found');
  });
  await new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  base = `http://127.0.0.1:${port}`;
  return {
    port, base, returnUri: `${base}${RETURN_PATH}`, flows, events, probe, grants, returns, create, pickup, holdNext,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

module.exports = { startInstance, unlock, RETURN_PATH };
