'use strict';
// The fake authorization server's own contract (tests/fake-as/server.js), without a browser or the relay.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const H = require('./helpers.js');

const SERVER = path.join(H.REPO, 'tests', 'fake-as', 'server.js');
const REDIRECT = 'https://localhost:1/qorus-oauth2-redirect';
const form = (o) => new URLSearchParams(o).toString();
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

let as;
test.before(async () => {
  as = await H.startFakeAs(['--client-secret', 's3cret', '--code-lifetime', '2']);
});
test.after(() => H.cleanup());

/** Runs /authorize and the decision; returns the raw decision response. */
async function decide(extra = {}, decision = 'allow') {
  const q = new URLSearchParams({ response_type: 'code', client_id: 'cid', redirect_uri: REDIRECT, state: 'st-1', scope: 'read:jira-work offline_access',
    audience: 'api.atlassian.com', prompt: 'consent', ...extra });
  const page = await H.request(`${as.base}/authorize?${q}`);
  assert.equal(page.status, 200);
  const id = /name="request" value="([^"]+)"/.exec(page.body)[1];
  return H.request(`${as.base}/authorize/decision`, { method: 'POST', headers: FORM, body: form({ request: id, decision }) });
}

/** Runs /authorize and the decision; returns the redirect Location as a URL. */
async function authorize(extra = {}, decision = 'allow') {
  const q = new URLSearchParams({ response_type: 'code', client_id: 'cid', redirect_uri: REDIRECT, state: 'st-1', scope: 'read:jira-work offline_access',
    audience: 'api.atlassian.com', prompt: 'consent', ...extra });
  const page = await H.request(`${as.base}/authorize?${q}`);
  assert.equal(page.status, 200);
  const id = /name="request" value="([^"]+)"/.exec(page.body)[1];
  const r = await H.request(`${as.base}/authorize/decision`, { method: 'POST', headers: FORM, body: form({ request: id, decision }) });
  assert.equal(r.status, 302);
  return new URL(r.headers.location);
}

const token = (o, headers = {}) => H.request(`${as.base}/token`, { method: 'POST', headers: { ...FORM, ...headers }, body: form(o) });

test('the consent page names the client and scopes, has Allow and Deny, loads nothing', async () => {
  const q = new URLSearchParams({ response_type: 'code', client_id: 'my<client>', redirect_uri: REDIRECT, state: 's', scope: 'read:jira-work write:x' });
  const r = await H.request(`${as.base}/authorize?${q}`);
  assert.equal(r.status, 200);
  assert.match(r.body, /<title>Authorize Qorus<\/title>/);
  assert.match(r.body, /my&lt;client&gt;/);
  assert.match(r.body, /read:jira-work/);
  assert.match(r.body, /write:x/);
  assert.match(r.body, />Allow</);
  assert.match(r.body, />Deny</);
  assert.doesNotMatch(r.body, /(src|href)=/i);
  assert.match(r.headers['content-security-policy'], /default-src 'none'/);
});

test('bad requests: no redirect without a redirect_uri; unsupported response_type is redirected', async () => {
  let r = await H.request(`${as.base}/authorize?response_type=code&client_id=c&state=s`);
  assert.equal(r.status, 400);
  r = await H.request(`${as.base}/authorize?${new URLSearchParams({ response_type: 'token', client_id: 'c', redirect_uri: REDIRECT, state: 's' })}`);
  assert.equal(r.status, 302);
  const u = new URL(r.headers.location);
  assert.equal(u.searchParams.get('error'), 'unsupported_response_type');
  assert.equal(u.searchParams.get('state'), 's');
  r = await H.request(`${as.base}/authorize/decision`, { method: 'POST', headers: FORM, body: form({ request: 'nope', decision: 'allow' }) });
  assert.equal(r.status, 400);
});

test('allow: a JWT-like code of 1-6 KiB, the state and iss; the code is good once with the secret', async () => {
  const u = await authorize();
  assert.equal(u.origin + u.pathname, REDIRECT);
  const code = u.searchParams.get('code');
  assert.match(code, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  assert.ok(code.length >= 1000 && code.length <= 6300, `code length ${code.length}`);
  assert.equal(u.searchParams.get('state'), 'st-1');
  assert.equal(u.searchParams.get('iss'), as.base);
  const base = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: 'cid' };
  assert.equal((await token({ ...base, client_secret: 'wrong' })).status, 401);
  assert.equal((await token({ ...base, redirect_uri: REDIRECT + 'x', client_secret: 's3cret' })).status, 400);
  assert.equal((await token({ ...base, client_id: 'other', client_secret: 's3cret' })).status, 400);
  assert.equal((await token({ ...base })).status, 401, 'no client authentication, no PKCE');
  const ok = await token({ ...base, client_secret: 's3cret' });
  assert.equal(ok.status, 200, ok.body);
  const t = JSON.parse(ok.body);
  assert.equal(t.token_type, 'Bearer');
  assert.equal(t.expires_in, 3600);
  assert.equal(t.scope, 'read:jira-work offline_access');
  assert.ok(t.access_token && t.refresh_token);
  assert.equal(ok.headers['cache-control'], 'no-store');
  const again = await token({ ...base, client_secret: 's3cret' });
  assert.equal(again.status, 400);
  assert.equal(JSON.parse(again.body).error, 'invalid_grant');
});

test('client_secret_basic is accepted too', async () => {
  const code = (await authorize()).searchParams.get('code');
  const r = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, { Authorization: `Basic ${Buffer.from('cid:s3cret').toString('base64')}` });
  assert.equal(r.status, 200, r.body);
});

test('PKCE S256: the verifier alone authenticates; a wrong or missing verifier fails', async () => {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const code = (await authorize({ code_challenge: challenge, code_challenge_method: 'S256' })).searchParams.get('code');
  const base = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: 'cid' };
  assert.equal((await token({ ...base, code_verifier: crypto.randomBytes(32).toString('base64url') })).status, 400);
  assert.equal((await token({ ...base, client_secret: 's3cret' })).status, 400, 'a challenge needs its verifier');
  const ok = await token({ ...base, code_verifier: verifier });
  assert.equal(ok.status, 200, ok.body);
  const q = new URLSearchParams({ response_type: 'code', client_id: 'cid', redirect_uri: REDIRECT, state: 's', code_challenge: challenge,
    code_challenge_method: 'plain' });
  const plain = await H.request(`${as.base}/authorize?${q}`);
  assert.equal(plain.status, 302);
  assert.equal(new URL(plain.headers.location).searchParams.get('error'), 'invalid_request');
});

test('deny: error=access_denied with a description, the state and iss', async () => {
  const u = await authorize({}, 'deny');
  assert.equal(u.searchParams.get('error'), 'access_denied');
  assert.ok(u.searchParams.get('error_description'));
  assert.equal(u.searchParams.get('state'), 'st-1');
  assert.equal(u.searchParams.get('iss'), as.base);
  assert.equal(u.searchParams.get('code'), null);
});

test('response_mode=form_post: a page that POSTs code, state and iss (or the error) to redirect_uri, its one script by hash', async () => {
  const fields = (html) => Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2]]));
  const r = await decide({ response_mode: 'form_post' });
  assert.equal(r.status, 200);
  assert.match(r.body, /<title>Returning to the application<\/title>/);
  assert.match(r.body, new RegExp(`<form id="fp" method="post" action="${REDIRECT}">`));
  const f = fields(r.body);
  assert.deepEqual(Object.keys(f).sort(), ['code', 'iss', 'state']);
  assert.equal(f.state, 'st-1');
  assert.equal(f.iss, as.base);
  assert.match(f.code, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  const script = /<script>([^<]*)<\/script>/.exec(r.body)[1];
  const csp = r.headers['content-security-policy'];
  assert.ok(csp.includes(`'sha256-${crypto.createHash('sha256').update(script).digest('base64')}'`), csp);
  assert.doesNotMatch(csp, /form-action/);
  assert.match(r.body, />Continue</, 'a button without JavaScript');
  const code = f.code.replace(/&amp;/g, '&');
  const ok = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: 'cid', client_secret: 's3cret' });
  assert.equal(ok.status, 200, ok.body);
  const d = fields((await decide({ response_mode: 'form_post' }, 'deny')).body);
  assert.deepEqual(Object.keys(d).sort(), ['error', 'error_description', 'iss', 'state']);
  assert.equal(d.error, 'access_denied');
  assert.equal(d.iss, as.base, 'iss on a denial too (RFC 9207)');
  const q = await decide({ response_mode: 'query' });
  assert.equal(q.status, 302);
  const bad = await H.request(`${as.base}/authorize?${new URLSearchParams({ response_type: 'code', client_id: 'cid', redirect_uri: REDIRECT, state: 's', response_mode: 'fragment' })}`);
  assert.equal(bad.status, 302);
  assert.equal(new URL(bad.headers.location).searchParams.get('error'), 'invalid_request');
});

test('unknown and expired codes are invalid_grant; wrong grant type and content type are refused', async () => {
  const base = { grant_type: 'authorization_code', redirect_uri: REDIRECT, client_id: 'cid', client_secret: 's3cret' };
  let r = await token({ ...base, code: 'not-issued' });
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).error, 'invalid_grant');
  const code = (await authorize()).searchParams.get('code');
  await H.sleep(2300); // --code-lifetime 2
  r = await token({ ...base, code });
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).error, 'invalid_grant');
  r = await token({ ...base, code, grant_type: 'refresh_token' });
  assert.equal(JSON.parse(r.body).error, 'unsupported_grant_type');
  r = await H.request(`${as.base}/token`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
  assert.equal(r.status, 400);
});

test('GET /_log lists what it received', async () => {
  const r = await H.request(`${as.base}/_log`);
  const log = JSON.parse(r.body);
  assert.ok(log.some((e) => e.path === '/token' && e.outcome === 'token'));
  assert.ok(log.some((e) => e.path === '/authorize/decision' && e.outcome === 'code' && e.code));
  assert.ok(log.every((e) => e.remote && /^(::ffff:)?127\./.test(e.remote)));
});

test('it refuses a non-loopback address', async () => {
  for (const host of ['0.0.0.0', '::', '192.0.2.1', 'example.invalid']) {
    const c = H.start(process.execPath, [SERVER, '--host', host, '--port', '0'], { name: 'fake-as-bad' });
    const { code } = await c.wait(10000);
    assert.equal(code, 2, host);
    assert.match(c.stderr, /loopback only/);
  }
});
