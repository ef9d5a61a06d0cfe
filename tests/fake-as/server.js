#!/usr/bin/env node
'use strict';
// A fake OAuth 2.0 authorization server for authrelay's tests, on loopback only, with Node's own modules.
//
//   node tests/fake-as/server.js [--port P] [--host 127.0.0.1] [--client-secret S] [--issuer URL] [--no-iss]
//                                [--code-size N] [--code-lifetime SEC]
//
// Prints "listening <port>" on stdout once ready (--port 0, the default, picks a free port).
//
//   GET  /authorize            consent page (title "Authorize Qorus"), buttons "Allow" and "Deny"
//   POST /authorize/decision   302 to redirect_uri with code, state[, iss] or error=access_denied, error_description,
//                              state[, iss]; with response_mode=form_post a 200 page (title "Returning to the
//                              application") that POSTs the same fields to redirect_uri (one inline script allowed by
//                              its hash; a "Continue" button without JavaScript)
//   POST /token                authorization_code grant: client_secret (body or HTTP Basic) or PKCE S256 verifier
//   GET  /_log                 JSON array of what it received (for tests)
//   GET  /_codes               JSON array of the codes it issued (for tests)

const http = require('node:http');
const crypto = require('node:crypto');
const net = require('node:net');

const PENDING_LIFETIME_MS = 10 * 60 * 1000;
const MAX_BODY = 64 * 1024;

function usage(msg) {
  if (msg) process.stderr.write(`fake-as: ${msg}\n`);
  process.stderr.write(
    'usage: node tests/fake-as/server.js [--port P] [--host 127.0.0.1|::1|localhost] [--client-secret S]\n' +
      '                                   [--issuer URL] [--no-iss] [--code-size BYTES] [--code-lifetime SEC]\n'
  );
  process.exit(2);
}

function parseArgs(argv) {
  const o = { port: 0, host: '127.0.0.1', clientSecret: 'test-secret', issuer: null, iss: true, codeSize: 0, codeLifetime: 300 };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') o.port = Number(val());
    else if (a === '--host') o.host = val();
    else if (a === '--client-secret') o.clientSecret = val();
    else if (a === '--issuer') o.issuer = val();
    else if (a === '--no-iss') o.iss = false;
    else if (a === '--code-size') o.codeSize = Number(val());
    else if (a === '--code-lifetime') o.codeLifetime = Number(val());
    else if (a === '--help' || a === '-h') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) usage('--port must be 0..65535');
  if (!Number.isInteger(o.codeSize) || (o.codeSize !== 0 && (o.codeSize < 64 || o.codeSize > 16384)))
    usage('--code-size must be 64..16384 (0: random 1-6 KiB)');
  if (!Number.isInteger(o.codeLifetime) || o.codeLifetime < 1 || o.codeLifetime > 3600) usage('--code-lifetime must be 1..3600 seconds');
  if (!isLoopbackHost(o.host)) usage(`refusing to bind ${o.host}: loopback only (127.0.0.0/8, ::1, localhost)`);
  return o;
}

function isLoopbackHost(h) {
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return h.split('.')[0] === '127';
  if (net.isIPv6(h)) return h === '::1' || /^0*:0*:0*:0*:0*:0*:0*:0*1$/.test(h);
  return false;
}

const opts = parseArgs(process.argv.slice(2));
const CODE_LIFETIME_MS = opts.codeLifetime * 1000; // codes are good for 5 minutes unless --code-lifetime says otherwise

const log = []; // what the server received, for tests
const pending = new Map(); // request id -> authorize request awaiting a decision
const codes = new Map(); // code -> grant

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const randomToken = (n) => crypto.randomBytes(n).toString('base64url');
const sha256 = (s) => crypto.createHash('sha256').update(s).digest();

function safeEqual(a, b) {
  const ha = sha256(String(a));
  const hb = sha256(String(b));
  return crypto.timingSafeEqual(ha, hb) && String(a).length === String(b).length;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function issuer() {
  return opts.issuer || `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${server.address().port}`;
}

/** A JWT-like authorization code: header.payload.signature, 1 to 6 KiB unless --code-size fixes it. */
function makeCode(claims) {
  const target = opts.codeSize || 1024 + crypto.randomInt(5 * 1024 + 1);
  const header = b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'fake-as' }));
  const sig = b64u(crypto.randomBytes(32));
  const base = { ...claims, jti: randomToken(16), iat: Math.floor(Date.now() / 1000) };
  let payload = b64u(JSON.stringify({ ...base, pad: '' }));
  const room = target - header.length - sig.length - 2 - payload.length;
  if (room > 0) {
    // a base64url payload grows by 4 characters per 3 bytes of padding text
    const padLen = Math.floor((room * 3) / 4);
    payload = b64u(JSON.stringify({ ...base, pad: randomToken(padLen).slice(0, padLen) }));
  }
  return `${header}.${payload}.${sig}`;
}

function securityHeaders(extra = {}) {
  return {
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    ...extra,
  };
}

function sendJson(res, status, obj, extra = {}) {
  const body = JSON.stringify(obj);
  res.writeHead(status, securityHeaders({ 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Pragma: 'no-cache', ...extra }));
  res.end(body);
}

function sendHtml(res, status, title, bodyHtml, csp = `default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'`) {
  const html =
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>${escapeHtml(title)}</title>` +
    '<style>body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#172b4d;margin:0}' +
    'main{max-width:32rem;margin:10vh auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.2)}' +
    'h1{font-size:1.4rem;margin-top:0}ul{padding-left:1.2rem}code{background:#ebecf0;padding:0 .2rem;border-radius:3px}' +
    '.buttons{display:flex;gap:1rem;margin-top:1.5rem}button{font-size:1rem;padding:.5rem 1.5rem;border-radius:4px;border:1px solid #c1c7d0;cursor:pointer}' +
    'button.allow{background:#0052cc;color:#fff;border-color:#0052cc}button.deny{background:#fff;color:#172b4d}' +
    '.muted{color:#5e6c84;font-size:.9rem}</style></head>' +
    `<body><main>${bodyHtml}</main></body></html>\n`;
  res.writeHead(
    status,
    securityHeaders({
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': Buffer.byteLength(html),
      'Content-Security-Policy': csp,
    })
  );
  res.end(html);
}

function errorPage(res, status, message) {
  sendHtml(res, status, 'Authorization error', `<h1>Authorization error</h1><p>${escapeHtml(message)}</p>`);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Query or form parameters as an object of first values, and the names that appear more than once. */
function params(search) {
  const sp = new URLSearchParams(search);
  const out = {};
  const dup = [];
  for (const [k, v] of sp) {
    if (Object.prototype.hasOwnProperty.call(out, k)) dup.push(k);
    else out[k] = v;
  }
  return { p: out, dup };
}

function validRedirectUri(s) {
  try {
    const u = new URL(s);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.hash === '' && u.username === '' && u.password === '';
  } catch {
    return false;
  }
}

function appendQuery(uri, pairs) {
  const u = new URL(uri);
  for (const [k, v] of pairs) if (v !== undefined && v !== null) u.searchParams.append(k, v);
  return u.toString();
}

// response_mode=form_post (OAuth 2.0 Form Post Response Mode): the one inline script, allowed by its hash
const FORM_POST_SCRIPT = 'document.getElementById("fp").submit();';
const FORM_POST_CSP = `default-src 'none'; script-src 'sha256-${crypto.createHash('sha256').update(FORM_POST_SCRIPT).digest('base64')}'; ` +
  "style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"; // no form-action: the relay may redirect on

/** The form_post response: a page that POSTs pairs (undefined values left out) to redirectUri. */
function sendFormPost(res, redirectUri, pairs) {
  const fields = pairs
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('');
  sendHtml(res, 200, 'Returning to the application',
    `<h1>Returning to the application</h1><form id="fp" method="post" action="${escapeHtml(redirectUri)}">${fields}` +
    '<p class="muted">If nothing happens:</p><div class="buttons"><button class="allow" type="submit">Continue</button></div></form>' +
    `<script>${FORM_POST_SCRIPT}</script>`, FORM_POST_CSP);
}

function gc() {
  const now = Date.now();
  for (const [k, v] of pending) if (now - v.created > PENDING_LIFETIME_MS) pending.delete(k);
  for (const [k, v] of codes) if (now - v.issued > 2 * CODE_LIFETIME_MS) codes.delete(k);
}

function handleAuthorize(req, res, url, entry) {
  const { p, dup } = params(url.search);
  entry.params = p;
  if (dup.length) return errorPage(res, 400, `Repeated parameter: ${dup.join(', ')}`);
  // without a usable redirect_uri nothing may be redirected: an error page (RFC 6749 4.1.2.1)
  if (!p.client_id) return errorPage(res, 400, 'Missing client_id.');
  if (!p.redirect_uri || !validRedirectUri(p.redirect_uri)) return errorPage(res, 400, 'Missing or invalid redirect_uri.');
  const redirectError = (error, description) => {
    entry.outcome = error;
    res.writeHead(302, securityHeaders({ Location: appendQuery(p.redirect_uri, [['error', error], ['error_description', description], ['state', p.state]]) }));
    res.end();
  };
  if (p.response_type !== 'code') return redirectError('unsupported_response_type', 'Only response_type=code is supported.');
  if (p.response_mode !== undefined && p.response_mode !== 'query' && p.response_mode !== 'form_post')
    return redirectError('invalid_request', 'response_mode must be query or form_post.');
  if (p.code_challenge !== undefined || p.code_challenge_method !== undefined) {
    if (p.code_challenge_method !== 'S256') return redirectError('invalid_request', 'code_challenge_method must be S256.');
    if (!/^[A-Za-z0-9_-]{43}$/.test(p.code_challenge || '')) return redirectError('invalid_request', 'Bad code_challenge.');
  }
  const id = randomToken(18);
  pending.set(id, { ...p, created: Date.now() });
  entry.outcome = 'consent';
  const scopes = (p.scope || '').split(' ').filter(Boolean);
  let dest;
  try {
    dest = new URL(p.redirect_uri).origin;
  } catch {
    dest = '';
  }
  const body =
    '<h1>Authorize Qorus</h1>' +
    `<p>The application <strong id="client">${escapeHtml(p.client_id)}</strong> asks for access to your account.</p>` +
    (scopes.length
      ? `<p>Requested scopes:</p><ul id="scopes">${scopes.map((s) => `<li><code>${escapeHtml(s)}</code></li>`).join('')}</ul>`
      : '<p id="scopes">No scopes requested.</p>') +
    (p.audience ? `<p class="muted">Audience: <code>${escapeHtml(p.audience)}</code></p>` : '') +
    `<p class="muted">You will be sent back to <code>${escapeHtml(dest)}</code>.</p>` +
    '<form method="post" action="/authorize/decision">' +
    `<input type="hidden" name="request" value="${escapeHtml(id)}">` +
    '<div class="buttons"><button class="allow" type="submit" name="decision" value="allow">Allow</button>' +
    '<button class="deny" type="submit" name="decision" value="deny">Deny</button></div></form>';
  // no form-action in the CSP: browsers apply it to the whole redirect chain (AS -> relay -> instance)
  sendHtml(res, 200, 'Authorize Qorus', body);
}

async function handleDecision(req, res, entry) {
  const { p } = params(await readBody(req));
  entry.params = { decision: p.decision };
  const r = p.request && pending.get(p.request);
  if (!r) return errorPage(res, 400, 'This consent request is unknown or has expired. Start again.');
  pending.delete(p.request);
  let pairs;
  if (p.decision === 'allow') {
    const code = makeCode({ iss: issuer(), aud: r.client_id, scope: r.scope || '' });
    codes.set(code, {
      client_id: r.client_id,
      redirect_uri: r.redirect_uri,
      scope: r.scope || '',
      code_challenge: r.code_challenge || null,
      issued: Date.now(),
      used: false,
    });
    entry.code = code;
    entry.outcome = 'code';
    pairs = [['code', code], ['state', r.state], ['iss', opts.iss ? issuer() : undefined]];
  } else {
    entry.outcome = 'access_denied';
    pairs = [
      ['error', 'access_denied'],
      ['error_description', 'The user denied access'],
      ['state', r.state],
      ['iss', opts.iss ? issuer() : undefined], // RFC 9207: on errors too
    ];
  }
  entry.response_mode = r.response_mode || 'query';
  if (r.response_mode === 'form_post') return sendFormPost(res, r.redirect_uri, pairs);
  res.writeHead(302, securityHeaders({ Location: appendQuery(r.redirect_uri, pairs) }));
  res.end();
}

async function handleToken(req, res, entry) {
  const ct = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  const raw = await readBody(req);
  const tokenError = (status, error, description) => {
    entry.outcome = error;
    sendJson(res, status, { error, error_description: description }, status === 401 ? { 'WWW-Authenticate': 'Basic realm="fake-as"' } : {});
  };
  if (ct !== 'application/x-www-form-urlencoded') return tokenError(400, 'invalid_request', 'Content-Type must be application/x-www-form-urlencoded');
  const { p, dup } = params(raw);
  // client authentication: client_secret_post, or client_secret_basic (RFC 6749 2.3.1)
  let clientId = p.client_id;
  let secret = p.client_secret;
  let auth = secret !== undefined ? 'client_secret_post' : 'none';
  const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization || '');
  if (basic) {
    const dec = Buffer.from(basic[1], 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i < 0 || secret !== undefined) return tokenError(400, 'invalid_request', 'Bad or duplicate client authentication');
    const bid = decodeURIComponent(dec.slice(0, i).replace(/\+/g, ' '));
    if (clientId !== undefined && clientId !== bid) return tokenError(400, 'invalid_request', 'client_id differs from the Basic credentials');
    clientId = bid;
    secret = decodeURIComponent(dec.slice(i + 1).replace(/\+/g, ' '));
    auth = 'client_secret_basic';
  }
  entry.params = {
    grant_type: p.grant_type,
    client_id: clientId,
    redirect_uri: p.redirect_uri,
    code: p.code,
    client_auth: auth,
    client_secret_present: secret !== undefined,
    code_verifier_present: p.code_verifier !== undefined,
  };
  if (dup.length) return tokenError(400, 'invalid_request', `Repeated parameter: ${dup.join(', ')}`);
  if (p.grant_type !== 'authorization_code') return tokenError(400, 'unsupported_grant_type', 'Only authorization_code is supported');
  if (!p.code || !p.redirect_uri || !clientId) return tokenError(400, 'invalid_request', 'code, redirect_uri and client_id are required');
  if (secret !== undefined && !safeEqual(secret, opts.clientSecret)) return tokenError(401, 'invalid_client', 'Client authentication failed');
  const g = codes.get(p.code);
  if (!g) return tokenError(400, 'invalid_grant', 'Unknown authorization code');
  if (g.used) return tokenError(400, 'invalid_grant', 'Authorization code already used');
  if (Date.now() - g.issued > CODE_LIFETIME_MS) return tokenError(400, 'invalid_grant', 'Authorization code expired');
  if (g.client_id !== clientId) return tokenError(400, 'invalid_grant', 'Code issued to another client');
  if (g.redirect_uri !== p.redirect_uri) return tokenError(400, 'invalid_grant', 'redirect_uri differs from the authorization request');
  if (g.code_challenge) {
    // RFC 7636 4.6: a code issued with a challenge needs its verifier
    if (p.code_verifier === undefined) return tokenError(400, 'invalid_grant', 'code_verifier required');
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(p.code_verifier)) return tokenError(400, 'invalid_grant', 'Malformed code_verifier');
    if (!safeEqual(b64u(sha256(p.code_verifier)), g.code_challenge)) return tokenError(400, 'invalid_grant', 'code_verifier does not match');
  } else if (p.code_verifier !== undefined) {
    return tokenError(400, 'invalid_grant', 'code_verifier given for a code issued without a challenge');
  }
  if (secret === undefined && !g.code_challenge) return tokenError(401, 'invalid_client', 'Client authentication required');
  g.used = true;
  const token = {
    access_token: `at_${randomToken(32)}`,
    token_type: 'Bearer',
    expires_in: 3600,
    refresh_token: `rt_${randomToken(32)}`,
    scope: g.scope,
  };
  entry.outcome = 'token';
  entry.access_token = token.access_token;
  sendJson(res, 200, token);
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://fake-as.invalid');
  const entry = {
    ts: new Date().toISOString(),
    method: req.method,
    path: url.pathname,
    remote: req.socket.remoteAddress,
    user_agent: req.headers['user-agent'] || null,
    content_type: req.headers['content-type'] || null,
    outcome: null,
  };
  const internal = url.pathname === '/_log' || url.pathname === '/_codes';
  if (!internal) log.push(entry);
  gc();
  try {
    if (url.pathname === '/authorize') {
      if (req.method !== 'GET') return errorPage(res, 405, 'Method not allowed.');
      return handleAuthorize(req, res, url, entry);
    }
    if (url.pathname === '/authorize/decision') {
      if (req.method !== 'POST') return errorPage(res, 405, 'Method not allowed.');
      return await handleDecision(req, res, entry);
    }
    if (url.pathname === '/token') {
      if (req.method !== 'POST') return sendJson(res, 405, { error: 'invalid_request', error_description: 'POST only' }, { Allow: 'POST' });
      return await handleToken(req, res, entry);
    }
    if (url.pathname === '/_log' && req.method === 'GET') return sendJson(res, 200, log);
    if (url.pathname === '/_codes' && req.method === 'GET')
      return sendJson(res, 200, [...codes.entries()].map(([code, g]) => ({ code, ...g })));
    if (url.pathname === '/favicon.ico') {
      res.writeHead(404, securityHeaders());
      return res.end();
    }
    entry.outcome = 'not_found';
    return errorPage(res, 404, 'Not found.');
  } catch (e) {
    entry.outcome = 'exception';
    if (!res.headersSent) sendJson(res, e.status || 500, { error: 'server_error', error_description: String(e.message) });
    else res.destroy();
  }
});

server.keepAliveTimeout = 2000;
server.on('error', (e) => {
  process.stderr.write(`fake-as: ${e.message}\n`);
  process.exit(1);
});
server.listen(opts.port, opts.host, () => {
  const a = server.address();
  if (!isLoopbackHost(a.address)) {
    process.stderr.write(`fake-as: bound ${a.address}, not loopback\n`);
    process.exit(1);
  }
  process.stdout.write(`listening ${a.port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
