'use strict';
// conformance.test.js: starts real relays and checks every response they give against docs/openapi.yaml: the status is
// documented for the operation, the headers declared required are there (and match their schema), the content type is
// a documented one, and JSON bodies validate against the response schema (ajv, JSON Schema 2020-12). It drives every
// documented operation and status except the 500s (internal failures that cannot be provoked from outside), and fails
// if one is left undriven.
//
// Four relays, all on loopback, sharing one key file so a state (or a browser cookie) issued by one verifies on the
// others:
//   main     --dev, memory store, no rate limit, allow-list auth.atlassian.com and 127.0.0.1 (http loopback AS allowed
//            by --dev), --wait-max 3 so waits stay short, --allow-unbound: version-1 and 1.1 sessions
//   bound    the protocol 1.1 default (no --allow-unbound), with --allow-client-id: 1.1 sessions only
//   limited  --rate-limit 5 (and --allow-unbound): the 429 cases
//   down     --redis at a closed loopback port (and --allow-unbound): the 503 cases
//
// The 1.1 flow needs a browser only for what a browser adds by itself: the test plays it (it keeps the relay's cookie,
// reads the CSRF token and the release key from the pages, and follows no redirect).
//
// usage: tests/openapi/run.sh, or node --test tests/openapi/ (env AUTHRELAY_BIN, default build/authrelay)
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const YAML = require('yaml');
const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');

const TOP = path.resolve(__dirname, '..', '..');
const BIN = path.resolve(TOP, process.env.AUTHRELAY_BIN || 'build/authrelay');
const SPEC_FILE = path.join(TOP, 'docs', 'openapi.yaml');
const SPEC = YAML.parse(fs.readFileSync(SPEC_FILE, 'utf8'));
const VECTORS = JSON.parse(fs.readFileSync(path.join(TOP, 'tests', 'vectors', 'seal.json'), 'utf8'));
const LOCKED_VECTORS = JSON.parse(fs.readFileSync(path.join(TOP, 'tests', 'vectors', 'locked.json'), 'utf8'));

const WAIT_MAX = 3;
const SECURITY_HEADERS = {
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'strict-transport-security': 'max-age=31536000', // we talk TLS to the relay: always expected here
};
const CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const CSP_CONFIRM = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

// ---------------------------------------------------------------------------------------------------------------------
// the OpenAPI document: $ref resolution and schema validation

const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
addFormats(ajv);
// the OpenAPI document is added whole, so its local $refs resolve; its top-level members are no schema keywords, and
// discriminator is an OpenAPI annotation (the oneOf does the validating)
ajv.addVocabulary(['discriminator', ...Object.keys(SPEC)]);
ajv.addSchema(SPEC, 'openapi.yaml', undefined, false);

function pointer(parts) {
    return '#/' + parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

// follows local $refs; returns the object and the JSON pointer (without '#') where it lives
function deref(obj, ptr) {
    for (let i = 0; obj && obj.$ref !== undefined; ++i) {
        assert.ok(i < 10 && obj.$ref.startsWith('#/'), `unsupported $ref ${obj.$ref}`);
        ptr = obj.$ref.slice(1);
        obj = ptr
            .split('/')
            .slice(1)
            .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
            .reduce((o, k) => o[k], SPEC);
    }
    return { obj, ptr };
}

const validators = new Map();
function validatorAt(ptr) {
    let v = validators.get(ptr);
    if (v === undefined) {
        v = ajv.getSchema('openapi.yaml#' + ptr);
        assert.ok(v, `no schema at ${ptr}`);
        validators.set(ptr, v);
    }
    return v;
}
function schemaErrors(v) {
    return ajv.errorsText(v.errors, { separator: '; ' });
}
function validateAt(ptr, data, what) {
    const v = validatorAt(ptr);
    assert.ok(v(data), `${what} does not match ${ptr}: ${schemaErrors(v)}\n${JSON.stringify(data).slice(0, 600)}`);
}
function schemaAccepts(name, data) {
    return validatorAt(`/components/schemas/${name}`)(data);
}

// (path template, method) -> operation; and what was seen, for the coverage check
const seen = new Set();
function operation(template, method) {
    const item = SPEC.paths[template];
    assert.ok(item, `path ${template} is not documented`);
    const op = item[method.toLowerCase()];
    assert.ok(op, `${method} ${template} is not documented`);
    return op;
}

function normType(t) {
    return String(t).toLowerCase().replace(/\s*;\s*/g, '; ').trim();
}

// checks one response against the document; returns the parsed JSON body (or the text)
function conform(template, method, res) {
    const op = operation(template, method);
    const what = `${method} ${template} -> ${res.status}`;
    const raw = op.responses[String(res.status)];
    assert.ok(raw, `${what}: status ${res.status} is not documented for ${op.operationId}`);
    const base = pointer(['paths', template, method.toLowerCase(), 'responses', String(res.status)]).slice(1);
    const { obj: resp, ptr: respPtr } = deref(raw, base);
    seen.add(`${op.operationId} ${res.status}`);

    // protocol: the security headers on every response, CSP on HTML, no CORS
    for (const [h, v] of Object.entries(SECURITY_HEADERS)) assert.equal(res.headers[h], v, `${what}: ${h}`);
    for (const h of Object.keys(res.headers))
        assert.ok(!h.startsWith('access-control-'), `${what}: CORS header ${h}`);

    // documented headers: required ones present; any present one matches its schema
    for (const [name, rawHeader] of Object.entries(resp.headers || {})) {
        const { obj: h, ptr: hPtr } = deref(rawHeader, `${respPtr}/headers/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`);
        let value = res.headers[name.toLowerCase()];
        if (Array.isArray(value)) {
            // Node gives Set-Cookie as an array: the relay sets at most one cookie
            assert.equal(value.length, 1, `${what}: ${name} more than once`);
            value = value[0];
        }
        if (h.required) assert.ok(value !== undefined, `${what}: required header ${name} is missing`);
        if (value === undefined || h.schema === undefined) continue;
        let data = value;
        const { obj: hs } = deref(h.schema, `${hPtr}/schema`);
        if (hs.type === 'integer') {
            assert.match(value, /^[0-9]+$/, `${what}: ${name} is not an integer: ${value}`);
            data = Number(value);
        }
        validateAt(`${hPtr}/schema`, data, `${what}: header ${name}`);
    }

    // content
    const ctype = res.headers['content-type'];
    if (!resp.content) {
        assert.equal(res.body.length, 0, `${what}: a body where none is documented`);
        if (method !== 'HEAD') assert.equal(ctype, undefined, `${what}: a Content-Type where no content is documented`);
        return null;
    }
    assert.ok(ctype, `${what}: no Content-Type`);
    const key = Object.keys(resp.content).find((k) => normType(k) === normType(ctype));
    assert.ok(key, `${what}: Content-Type ${ctype} is not one of ${Object.keys(resp.content).join(', ')}`);
    const schemaPtr = `${respPtr}/content/${key.replace(/~/g, '~0').replace(/\//g, '~1')}/schema`;
    if (method === 'HEAD') return null;
    if (key === 'application/json') {
        let body;
        assert.doesNotThrow(() => (body = JSON.parse(res.text)), `${what}: body is not JSON`);
        validateAt(schemaPtr, body, `${what}: body`);
        return body;
    }
    assert.ok(key.startsWith('text/html'), `${what}: unexpected documented type ${key}`);
    // every page has a CSP (its value is checked against the documented header above) and COOP
    assert.ok(res.headers['content-security-policy'], `${what}: no CSP`);
    assert.equal(res.headers['cross-origin-opener-policy'], 'same-origin', `${what}: COOP`);
    assert.ok(res.text.startsWith('<!DOCTYPE html>'), `${what}: not an HTML page`);
    validateAt(schemaPtr, res.text, `${what}: body`);
    return res.text;
}

// ---------------------------------------------------------------------------------------------------------------------
// relays

const agent = new https.Agent({ rejectUnauthorized: false, keepAlive: false }); // self-signed dev certificate, loopback
const relays = {};
let tmpdir;

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

function request(relay, method, target, { headers = {}, body } = {}) {
    return new Promise((resolve, reject) => {
        const h = { Host: `localhost:${relay.port}`, ...headers };
        if (body !== undefined) h['Content-Length'] = Buffer.byteLength(body);
        const req = https.request(
            { host: '127.0.0.1', port: relay.port, servername: 'localhost', method, path: target, headers: h, agent },
            (res) => {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () => {
                    const buf = Buffer.concat(chunks);
                    resolve({ status: res.statusCode, headers: res.headers, body: buf, text: buf.toString('utf8') });
                });
                res.on('error', reject);
            },
        );
        req.setTimeout(20000, () => req.destroy(new Error(`${method} ${target}: no answer within 20 s`)));
        req.on('error', reject);
        if (body !== undefined) req.write(body);
        req.end();
    });
}

const CLIENT_ID = 'qorus-test-client';

async function startRelay(name, extra) {
    const port = await freePort();
    const admin = await freePort();
    const args = ['serve', '--dev', '--keys', path.join(tmpdir, 'keys.json'), '--listen', `127.0.0.1:${port}`,
        '--admin-listen', `127.0.0.1:${admin}`, '--threads', '2', '--wait-max', String(WAIT_MAX), '--shutdown-grace', '1',
        ...extra];
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const relay = { name, port, child, log: '', exited: false };
    child.stdout.on('data', (d) => (relay.log += d));
    child.stderr.on('data', (d) => (relay.log += d));
    child.on('exit', () => (relay.exited = true));
    relays[name] = relay;
    const deadline = Date.now() + 15000;
    for (;;) {
        if (relay.exited) throw new Error(`relay ${name} exited:\n${relay.log}`);
        try {
            const r = await request(relay, 'GET', '/.well-known/authrelay');
            if (r.status === 200) break;
        } catch (e) {
            /* not listening yet */
        }
        if (Date.now() > deadline) throw new Error(`relay ${name} did not come up within 15 s:\n${relay.log}`);
        await new Promise((r) => setTimeout(r, 100));
    }
    relay.base = `https://localhost:${port}`;
    return relay;
}

async function stopRelays() {
    await Promise.all(
        Object.values(relays).map(
            (r) =>
                new Promise((resolve) => {
                    if (r.exited) return resolve();
                    const kill = setTimeout(() => r.child.kill('SIGKILL'), 5000);
                    r.child.on('exit', () => {
                        clearTimeout(kill);
                        resolve();
                    });
                    r.child.kill('SIGTERM');
                }),
        ),
    );
}
process.on('exit', () => {
    for (const r of Object.values(relays)) if (!r.exited) r.child.kill('SIGKILL');
});

before(async () => {
    assert.ok(fs.existsSync(BIN), `no relay binary at ${BIN} (build it, or set AUTHRELAY_BIN)`);
    tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), 'authrelay-openapi-'));
    execFileSync(BIN, ['keygen', path.join(tmpdir, 'keys.json')], { stdio: 'ignore' });
    const closed = await freePort(); // nothing listens there: the store is down for good
    await Promise.all([
        startRelay('main', ['--rate-limit', '0', '--allow-as', 'auth.atlassian.com', '--allow-as', '127.0.0.1', '--allow-unbound']),
        startRelay('bound', ['--rate-limit', '0', '--allow-as', 'auth.atlassian.com', '--allow-as', '*.okta.com', '--allow-client-id', CLIENT_ID,
            '--allow-client-id', 'qorus-other-client']),
        startRelay('limited', ['--rate-limit', '5', '--allow-unbound']),
        startRelay('down', ['--rate-limit', '0', '--redis', `redis://127.0.0.1:${closed}`, '--allow-unbound']),
    ]);
});

after(async () => {
    await stopRelays();
    if (tmpdir) fs.rmSync(tmpdir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------------------
// helpers for the flow

const AS = 'https://auth.atlassian.com/authorize';
const SESSIONS = '/v1/sessions';
const SESSION = '/v1/sessions/{session}';
const CALLBACK = '/qorus-oauth2-redirect';
const CALLBACK_ALIAS = '/v1/callback';
const JSON_CT = { 'Content-Type': 'application/json' };
const FORM_CT = { 'Content-Type': 'application/x-www-form-urlencoded' };
const LONG_QUERY = '?x=' + 'a'.repeat(16 * 1024 + 1);

async function create(relay, req, expect = 201) {
    const body = typeof req === 'string' ? req : JSON.stringify(req);
    const res = await request(relay, 'POST', SESSIONS, { headers: JSON_CT, body });
    assert.equal(res.status, expect, `create ${body.slice(0, 200)}: ${res.status} ${res.text}`);
    const out = conform(SESSIONS, 'POST', res);
    if (expect === 201) {
        assert.equal(res.headers.location, out.poll_url);
        assert.equal(out.poll_url, `${relay.base}/v1/sessions/${out.session}`);
        assert.equal(out.redirect_uri, `${relay.base}/qorus-oauth2-redirect`);
        if (out.start_url !== undefined) {
            assert.match(out.start_url, new RegExp(`^${relay.base.replace(/[.]/g, '\\.')}/v1/start\\?t=[A-Za-z0-9_-]{43}$`));
            assert.equal(out.state, undefined);
            out.token = out.start_url.slice(out.start_url.indexOf('?t=') + 3);
        }
    }
    return { res, out };
}

function pickup(relay, s, { token = s.poll_token, wait, headers = {} } = {}) {
    const h = { ...headers };
    if (token !== null) h.Authorization = `Bearer ${token}`;
    if (wait !== undefined) h.Prefer = `wait=${wait}`;
    return request(relay, 'GET', `/v1/sessions/${s.session}`, { headers: h });
}

function del(relay, s, token = s.poll_token) {
    const h = token !== null ? { Authorization: `Bearer ${token}` } : {};
    return request(relay, 'DELETE', `/v1/sessions/${s.session}`, { headers: h });
}

function callback(relay, params, { alias = false, post = false, cookie } = {}) {
    const q = new URLSearchParams(params).toString();
    const p = alias ? CALLBACK_ALIAS : CALLBACK;
    const c = cookie !== undefined ? { Cookie: `__Host-authrelay=${cookie}` } : {};
    return post
        ? request(relay, 'POST', p, { headers: { ...FORM_CT, ...c }, body: q })
        : request(relay, 'GET', `${p}?${q}`, { headers: c });
}

// ---------------------------------------------------------------------------------------------------------------------
// protocol 1.1: a browser, played

const START = '/v1/start';
const RETURN = 'https://qorus.example.com:8011/grant';
const PARAMS = { client_id: CLIENT_ID, scope: 'read:jira-work offline_access', audience: 'api.atlassian.com', prompt: 'consent' };

function bound(extra = {}) {
    return { authorization_server: AS, authorize_params: PARAMS, return_uri: RETURN, ...extra };
}

// the value of a hidden form field of a page (the relay writes them as name="..." value="...")
function field(html, name) {
    const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
    return m ? m[1] : undefined;
}

// GET the start page as a browser holding `cookie` (undefined: none); returns the response, the cookie the browser now
// holds and the CSRF token of the page
async function startPage(relay, token, cookie) {
    const res = await request(relay, 'GET', `${START}?t=${token}`, cookie ? { headers: { Cookie: `__Host-authrelay=${cookie}` } } : {});
    const page = conform(START, 'GET', res);
    const set = res.headers['set-cookie'];
    if (set !== undefined) {
        assert.equal(cookie, undefined, 'a cookie was set again');
        assert.equal(set.length, 1);
        cookie = set[0].match(/^__Host-authrelay=([^;]*);/)[1];
    }
    return { res, cookie, csrf: res.status === 200 ? field(page, 'csrf') : undefined, page };
}

function confirm(relay, form, { cookie, origin, type = 'application/x-www-form-urlencoded' } = {}) {
    const h = {};
    if (type !== null) h['Content-Type'] = type;
    if (cookie !== undefined) h.Cookie = `__Host-authrelay=${cookie}`;
    if (origin !== undefined) h.Origin = origin;
    const body = typeof form === 'string' ? form : new URLSearchParams(form).toString();
    return request(relay, 'POST', START, { headers: h, body });
}

// create, show the page, Continue: the session (with .token), the browser's cookie and the state the AS would get
async function confirmed(relay, extra = {}) {
    const { out: s } = await create(relay, bound(extra));
    const { cookie, csrf } = await startPage(relay, s.token);
    const res = await confirm(relay, { t: s.token, csrf, action: 'continue' }, { cookie });
    assert.equal(res.status, 303);
    conform(START, 'POST', res);
    const loc = new URL(res.headers.location);
    return { s, cookie, state: loc.searchParams.get('state'), location: loc };
}

// the unlocking of docs/integrating.md, step 5, as printed there
function b64urlDecode(s) {
    const b = Buffer.from(s, 'base64url');
    if (!/^[A-Za-z0-9_-]*$/.test(s) || b.toString('base64url') !== s) throw new Error('not canonical base64url');
    return b;
}

function unlock(locked, release, session) {
    const key = b64urlDecode(release);
    const blob = b64urlDecode(locked);
    if (key.length !== 32) throw new Error('not a release key');
    if (blob.length < 1 + 12 + 16 || blob[0] !== 0x01) throw new Error('not a version 1 locked value');
    const d = crypto.createDecipheriv('aes-256-gcm', key, blob.subarray(1, 13));
    d.setAAD(Buffer.from(session, 'ascii'));
    d.setAuthTag(blob.subarray(blob.length - 16));
    return Buffer.concat([d.update(blob.subarray(13, blob.length - 16)), d.final()]); // final() throws on a bad tag
}

// the delivery page: a form POSTing session, status, message, release to the return_uri, submitted by the one script
// the CSP allows by its hash
function delivery(html, res, s, status, message) {
    const form = html.match(/<form id="deliver" method="post" action="([^"]*)">/);
    assert.ok(form, 'no delivery form');
    assert.equal(form[1], RETURN);
    assert.equal(field(html, 'session'), s.session);
    assert.equal(field(html, 'status'), status);
    assert.equal(field(html, 'message'), message);
    const release = field(html, 'release');
    assert.match(release, /^[A-Za-z0-9_-]{43}$/);
    validateAt('/components/schemas/DeliveryForm', { session: s.session, status, message, release }, 'the delivered form');
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    assert.equal(scripts.length, 1, 'one inline script');
    const hash = crypto.createHash('sha256').update(scripts[0]).digest('base64');
    assert.equal(res.headers['content-security-policy'],
        `default-src 'none'; script-src 'sha256-${hash}'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'`);
    return release;
}

function b64url(buf) {
    return Buffer.from(buf).toString('base64url');
}

// the unsealing of docs/integrating.md, step by step
function unseal(sealedB64, recipientPrivateRaw, recipientPublicRaw, sessionId) {
    const blob = Buffer.from(sealedB64, 'base64url');
    if (blob.length < 1 + 32 + 12 + 16 || blob[0] !== 0x01) throw new Error('not a version 1 sealed value');
    const eph = blob.subarray(1, 33);
    const nonce = blob.subarray(33, 45);
    const ct = blob.subarray(45, blob.length - 16);
    const tag = blob.subarray(blob.length - 16);
    const privateKey = crypto.createPrivateKey({
        key: { kty: 'OKP', crv: 'X25519', d: b64url(recipientPrivateRaw), x: b64url(recipientPublicRaw) },
        format: 'jwk',
    });
    const publicKey = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(eph) }, format: 'jwk' });
    const ikm = crypto.diffieHellman({ privateKey, publicKey });
    if (ikm.every((b) => b === 0)) throw new Error('all-zero shared secret');
    const salt = Buffer.concat([eph, recipientPublicRaw]);
    const key = Buffer.from(crypto.hkdfSync('sha256', ikm, salt, Buffer.from('authrelay seal v1'), 32));
    const d = crypto.createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(Buffer.from(sessionId, 'ascii'));
    d.setAuthTag(tag);
    return Buffer.concat([d.update(ct), d.final()]).toString('utf8');
}

function x25519Pair() {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('x25519');
    const jwk = privateKey.export({ format: 'jwk' });
    return { pub: Buffer.from(jwk.x, 'base64url'), priv: Buffer.from(jwk.d, 'base64url'), sealKey: jwk.x, publicKey };
}

// ---------------------------------------------------------------------------------------------------------------------
// the tests, in order

test('the document is OpenAPI 3.1 and its schemas compile', () => {
    assert.match(SPEC.openapi, /^3\.1\./);
    for (const name of Object.keys(SPEC.components.schemas)) validatorAt(`/components/schemas/${name}`);
});

test('discovery', async () => {
    const r = relays.main;
    const res = await request(r, 'GET', '/.well-known/authrelay');
    assert.equal(res.status, 200);
    const d = conform('/.well-known/authrelay', 'GET', res);
    assert.equal(d.redirect_uri, `${r.base}/qorus-oauth2-redirect`);
    assert.equal(d.sessions_endpoint, `${r.base}/v1/sessions`);
    assert.equal(d.wait_max, WAIT_MAX);
    assert.equal(d.session_ttl_max, 600);
    assert.deepEqual(d.authorization_servers, ['auth.atlassian.com', '127.0.0.1']);
    assert.deepEqual(d.seal_algorithms, ['X25519-HKDF-SHA256-A256GCM']);
    assert.equal(d.version, '1.1');
    assert.equal(d.unbound_sessions, true);
    const any = conform('/.well-known/authrelay', 'GET', await request(relays.limited, 'GET', '/.well-known/authrelay'));
    assert.deepEqual(any.authorization_servers, []);
    const b = conform('/.well-known/authrelay', 'GET', await request(relays.bound, 'GET', '/.well-known/authrelay'));
    assert.deepEqual(b.authorization_servers, ['auth.atlassian.com', '*.okta.com']);
    assert.equal(b.version, '1.1');
    assert.equal(b.unbound_sessions, false);
});

test('session creation: accepted and refused bodies agree with the request schema', async () => {
    const r = relays.main;
    const pair = x25519Pair();
    // [body, status, what the request schema says: true accepts, false rejects, null cannot tell]
    const cases = [
        [{ authorization_server: AS }, 201, true],
        [{ authorization_server: AS, return_uri: 'https://qorus.example.com:8011/grant', seal_key: pair.sealKey, ttl: 60 }, 201, true],
        [{ authorization_server: 'http://127.0.0.1:9/authorize', return_uri: 'http://localhost:8011/grant' }, 201, true],
        [{ authorization_server: 'HTTPS://AUTH.ATLASSIAN.COM/authorize?x=1', return_uri: null, seal_key: null, ttl: null }, 201, true],
        [{ authorization_server: AS, unknown_member: { nested: [1, 2] } }, 201, true],
        [{ authorization_server: AS, ttl: 600 }, 201, true],
        [{}, 400, false],
        [{ authorization_server: 42 }, 400, false],
        [{ authorization_server: 'ftp://auth.atlassian.com/authorize' }, 400, false],
        [{ authorization_server: 'https://user@auth.atlassian.com/authorize' }, 400, false],
        [{ authorization_server: AS, return_uri: 'https://q.example/grant#frag' }, 400, false],
        [{ authorization_server: AS, return_uri: 'https://q.example/' + 'p'.repeat(2048) }, 400, false],
        [{ authorization_server: AS, seal_key: 'AAAA' }, 400, false],
        [{ authorization_server: AS, seal_key: pair.sealKey.slice(0, 42) + 'B' }, 400, false],
        [{ authorization_server: AS, ttl: 59 }, 400, false],
        [{ authorization_server: AS, ttl: '600' }, 400, false],
        [{ authorization_server: AS, ttl: 601 }, 400, null], // above this relay's session_ttl_max
        [{ authorization_server: 'http://auth.atlassian.com/authorize' }, 400, null], // http only to loopback
        [{ authorization_server: 'https://auth.example.org/authorize' }, 403, true],
    ];
    for (const [body, status, schemaOk] of cases) {
        const { out } = await create(r, body, status);
        if (schemaOk !== null)
            assert.equal(schemaAccepts('SessionRequest', body), schemaOk, `request schema on ${JSON.stringify(body).slice(0, 120)}`);
        if (status === 201 && body.ttl) assert.equal(out.expires_in, body.ttl);
        if (status === 201 && !body.ttl) assert.equal(out.expires_in, 600);
        if (status === 403) assert.equal(out.error, 'authorization_server_not_allowed');
        if (status === 400) assert.equal(out.error, 'invalid_request');
    }
    // bodies no schema can describe: strict JSON, duplicates, size, media type
    for (const raw of ['{"authorization_server":"' + AS + '",}', '{"authorization_server":"' + AS + '","ttl":600.0}',
        '{"ttl":60,"ttl":61,"authorization_server":"' + AS + '"}', '[' + '['.repeat(20) + ']'.repeat(20) + ']', '', 'null'])
        await create(r, raw, 400);
    const big = JSON.stringify({ authorization_server: AS, pad: 'x'.repeat(8192) });
    await create(r, big, 413);
    for (const headers of [{}, { 'Content-Type': 'text/plain' }, { 'Content-Type': 'application/jsonx' }]) {
        const res = await request(r, 'POST', SESSIONS, { headers, body: JSON.stringify({ authorization_server: AS }) });
        assert.equal(res.status, 415);
        conform(SESSIONS, 'POST', res);
    }
    const ok = await request(r, 'POST', SESSIONS, {
        headers: { 'Content-Type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ authorization_server: AS }),
    });
    assert.equal(ok.status, 201);
    conform(SESSIONS, 'POST', ok);
});

test('flow without return_uri: pending, callback, authorized, read again, acknowledge, gone', async () => {
    const r = relays.main;
    const { out: s } = await create(r, { authorization_server: AS });
    let res = await pickup(r, s);
    assert.equal(res.status, 202);
    assert.equal(res.headers['preference-applied'], undefined);
    const pending = conform(SESSION, 'GET', res);
    assert.ok(pending.expires_in > 0 && pending.expires_in <= 600);

    res = await callback(r, { code: 'the code', state: s.state, iss: 'https://auth.atlassian.com' });
    assert.equal(res.status, 200);
    const page = conform(CALLBACK, 'GET', res);
    assert.ok(!page.includes('the code') && !page.includes(s.state), 'the page carries the code or the state');

    res = await pickup(r, s);
    assert.equal(res.status, 200);
    const result = conform(SESSION, 'GET', res);
    assert.deepEqual(result, { status: 'authorized', code: 'the code', state: s.state, iss: 'https://auth.atlassian.com' });
    res = await pickup(r, s, { wait: 1 });
    assert.equal(res.status, 200);
    assert.equal(res.headers['preference-applied'], 'wait=1');
    assert.deepEqual(conform(SESSION, 'GET', res), result);

    res = await callback(r, { error: 'access_denied', state: s.state });
    assert.equal(res.status, 409);
    conform(CALLBACK, 'GET', res);

    res = await del(r, s);
    assert.equal(res.status, 204);
    conform(SESSION, 'DELETE', res);
    res = await del(r, s);
    assert.equal(res.status, 404);
    conform(SESSION, 'DELETE', res);
    res = await pickup(r, s);
    assert.equal(res.status, 404);
    conform(SESSION, 'GET', res);
    for (const [p, post] of [[CALLBACK, false], [CALLBACK_ALIAS, false], [CALLBACK, true], [CALLBACK_ALIAS, true]]) {
        res = await callback(r, { code: 'late', state: s.state }, { alias: p === CALLBACK_ALIAS, post });
        assert.equal(res.status, 410, `${post ? 'POST' : 'GET'} ${p}`);
        conform(p, post ? 'POST' : 'GET', res);
    }
});

test('flow with return_uri: 303 back to it, denied result, long poll woken by the callback', async () => {
    const r = relays.main;
    const { out: s } = await create(r, { authorization_server: AS, return_uri: 'https://qorus.example.com:8011/grant?tab=oauth' });
    const waiting = pickup(r, s, { wait: 999 });
    await new Promise((ok) => setTimeout(ok, 300));
    const t0 = Date.now();
    let res = await callback(r, { error: 'access denied', error_description: 'User said no', state: s.state });
    assert.equal(res.status, 303);
    conform(CALLBACK, 'GET', res);
    assert.equal(res.headers.location, 'https://qorus.example.com:8011/grant?tab=oauth&status=error&message=access%20denied');
    res = await waiting;
    assert.ok(Date.now() - t0 < 2000, 'the waiting pickup was not woken by the callback');
    assert.equal(res.status, 200);
    assert.equal(res.headers['preference-applied'], `wait=${WAIT_MAX}`);
    assert.deepEqual(conform(SESSION, 'GET', res), { status: 'denied', error: 'access denied', error_description: 'User said no' });

    // the other three callback variants: 303, then 409 for a second callback on the same session
    for (const [p, post] of [[CALLBACK_ALIAS, false], [CALLBACK, true], [CALLBACK_ALIAS, true]]) {
        const { out: s2 } = await create(r, { authorization_server: AS, return_uri: 'https://qorus.example.com:8011/grant' });
        const m = post ? 'POST' : 'GET';
        res = await callback(r, { code: 'c2', state: s2.state }, { alias: p === CALLBACK_ALIAS, post });
        assert.equal(res.status, 303, `${m} ${p}`);
        conform(p, m, res);
        assert.equal(res.headers.location, 'https://qorus.example.com:8011/grant?status=success');
        res = await callback(r, { code: 'c3', state: s2.state }, { alias: p === CALLBACK_ALIAS, post });
        assert.equal(res.status, 409, `${m} ${p}`);
        conform(p, m, res);
        res = await pickup(r, s2);
        assert.deepEqual(conform(SESSION, 'GET', res), { status: 'authorized', code: 'c2', state: s2.state });
    }
});

test('denied without return_uri: 200 page with the escaped error; alias GET and form POST variants', async () => {
    const r = relays.main;
    const { out: s } = await create(r, { authorization_server: AS });
    let res = await callback(r, { error: '<b>no</b>', error_uri: 'https://auth.example/err', state: s.state }, { alias: true });
    assert.equal(res.status, 200);
    const page = conform(CALLBACK_ALIAS, 'GET', res);
    assert.ok(page.includes('&lt;b&gt;no&lt;/b&gt;') && !page.includes('<b>no'), 'the error is not escaped');
    res = await callback(r, { error: 'again', state: s.state }, { alias: true });
    assert.equal(res.status, 409);
    conform(CALLBACK_ALIAS, 'GET', res);
    res = await pickup(r, s);
    assert.deepEqual(conform(SESSION, 'GET', res), { status: 'denied', error: '<b>no</b>', error_uri: 'https://auth.example/err' });

    const { out: s2 } = await create(r, { authorization_server: AS });
    res = await callback(r, { code: 'form code', state: s2.state }, { post: true });
    assert.equal(res.status, 200);
    conform(CALLBACK, 'POST', res);
    const { out: s3 } = await create(r, { authorization_server: AS });
    res = await callback(r, { code: 'form code', state: s3.state }, { post: true, alias: true });
    assert.equal(res.status, 200);
    conform(CALLBACK_ALIAS, 'POST', res);
});

test('callback parameters beyond RFC 6749: params, params_dropped; iss in denied results', async () => {
    const r = relays.main;
    const { out: s } = await create(r, { authorization_server: AS });
    let res = await request(r, 'GET', `${CALLBACK}?code=c&state=${s.state}&realmId=9130&shop=acme.myshopify.com&dup=1&dup=2&bad%20name=x`);
    assert.equal(res.status, 200);
    conform(CALLBACK, 'GET', res);
    let got = conform(SESSION, 'GET', await pickup(r, s));
    assert.deepEqual(got, { status: 'authorized', code: 'c', state: s.state, params: { realmId: '9130', shop: 'acme.myshopify.com' }, params_dropped: 3 });
    const { out: d } = await create(r, { authorization_server: AS });
    res = await callback(r, { error: 'access_denied', iss: 'https://auth.atlassian.com', state: d.state, session_state: 'x1' }, { post: true });
    assert.equal(res.status, 200);
    conform(CALLBACK, 'POST', res);
    got = conform(SESSION, 'GET', await pickup(r, d));
    assert.deepEqual(got, { status: 'denied', error: 'access_denied', iss: 'https://auth.atlassian.com', params: { session_state: 'x1' } });
});

test('sealed results: X25519 + HKDF-SHA256 + AES-256-GCM, as documented', async () => {
    // the documented algorithm opens the shipped vectors first
    for (const v of VECTORS) {
        const open = () =>
            unseal(v.sealed, Buffer.from(v.recipient_private, 'hex'), Buffer.from(v.recipient_public, 'hex'), v.aad);
        if (v.valid) assert.equal(open(), v.plaintext, v.description);
        else assert.throws(open, undefined, v.description);
    }
    const r = relays.main;
    for (const params of [{ code: 'sealed code', iss: 'https://auth.atlassian.com' }, { error: 'access_denied', error_description: 'no' }]) {
        const pair = x25519Pair();
        const { out: s } = await create(r, { authorization_server: AS, seal_key: pair.sealKey });
        let res = await callback(r, { ...params, state: s.state });
        assert.equal(res.status, 200);
        conform(CALLBACK, 'GET', res);
        res = await pickup(r, s, { wait: 1 });
        assert.equal(res.status, 200);
        const sealed = conform(SESSION, 'GET', res);
        assert.equal(sealed.status, 'sealed');
        const plain = JSON.parse(unseal(sealed.sealed, pair.priv, pair.pub, s.session));
        const expect = params.code
            ? { status: 'authorized', code: params.code, state: s.state, iss: params.iss }
            : { status: 'denied', error: params.error, error_description: params.error_description };
        assert.deepEqual(plain, expect);
        validateAt('/components/schemas/Result', plain, 'the unsealed plaintext');
        assert.ok(schemaAccepts(params.code ? 'Authorized' : 'Denied', plain));
        assert.throws(() => unseal(sealed.sealed, pair.priv, pair.pub, 'AAAAAAAAAAAAAAAAAAAAAA'), undefined, 'wrong AAD accepted');
        res = await del(r, s);
        assert.equal(res.status, 204);
        conform(SESSION, 'DELETE', res);
    }
});

test('1.1 session creation: accepted and refused bodies agree with the request schema', async () => {
    const r = relays.bound;
    const pair = x25519Pair();
    const many = {};
    for (let i = 0; i < 32; ++i) many[`p${i}`] = 'v';
    many.client_id = CLIENT_ID;
    // [body, status, what the request schema says: true accepts, false rejects, null cannot tell]
    const cases = [
        [bound(), 201, true],
        [bound({ label: 'Qorus production', seal_key: pair.sealKey, ttl: 60 }), 201, true],
        [bound({ label: 'Qorus – Zürich 生产' }), 201, true],
        [bound({ label: null, seal_key: null, ttl: null, unknown_member: [1] }), 201, true],
        [bound({ return_uri: 'http://localhost:8011/grant' }), 201, true],
        [bound({ authorize_params: { client_id: CLIENT_ID } }), 201, true],
        [bound({ authorize_params: { ...PARAMS, response_mode: 'form_post', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' } }), 201, true],
        [bound({ authorize_params: { ...PARAMS, response_mode: 'query', 'x.y_z-1': 'a b ~' } }), 201, true],
        [bound({ authorize_params: { client_id: 'qorus-other-client' } }), 201, true],
        [bound({ authorization_server: 'https://acme.okta.com/oauth2/v1/authorize' }), 201, true], // *.okta.com
        [bound({ authorization_server: 'https://eu.acme.okta.com/oauth2/v1/authorize' }), 201, true],
        [{ authorization_server: AS, return_uri: RETURN }, 400, null], // version 1: this relay has no --allow-unbound
        [{ authorization_server: AS, authorize_params: null, return_uri: RETURN }, 400, null],
        [{ authorization_server: AS, authorize_params: PARAMS }, 400, false],
        [bound({ return_uri: null }), 400, false],
        [bound({ return_uri: RETURN + '?tab=oauth' }), 400, false],
        [bound({ return_uri: 'https://user@qorus.example.com/grant' }), 400, false],
        [bound({ return_uri: RETURN + '#x' }), 400, false],
        [bound({ authorize_params: {} }), 400, false],
        [bound({ authorize_params: 'client_id=x' }), 400, false],
        [bound({ authorize_params: { scope: 'x' } }), 400, false],
        [bound({ authorize_params: { ...PARAMS, redirect_uri: RETURN } }), 400, false],
        [bound({ authorize_params: { ...PARAMS, state: 'mine' } }), 400, false],
        [bound({ authorize_params: { ...PARAMS, response_type: 'code' } }), 400, false],
        [bound({ authorize_params: { ...PARAMS, Redirect_URI: RETURN } }), 400, false], // in any letter case
        [bound({ authorize_params: { ...PARAMS, CLIENT_ID: 'x' } }), 400, false],
        [bound({ authorize_params: { ...PARAMS, client_id: '' } }), 400, false],
        [bound({ authorize_params: { ...PARAMS, response_mode: 'fragment' } }), 400, false],
        [bound({ authorize_params: { ...PARAMS, 'bad name': 'x' } }), 400, false],
        [bound({ authorize_params: { ...PARAMS, ['n'.repeat(65)]: 'x' } }), 400, false],
        [bound({ authorize_params: { ...PARAMS, x: 1 } }), 400, false],
        [bound({ authorize_params: { ...PARAMS, x: 'a\u0001' } }), 400, false],
        [bound({ authorize_params: { ...PARAMS, x: 'Zürich' } }), 400, false],
        [bound({ authorize_params: many }), 400, false], // 33 members
        [bound({ authorize_params: { ...PARAMS, x: 'v'.repeat(4096) } }), 400, null], // over 4 KiB in all
        [bound({ label: '' }), 400, false],
        [bound({ label: 'x'.repeat(65) }), 400, false],
        [bound({ label: 'é'.repeat(33) }), 400, null], // 66 bytes, 33 characters
        [bound({ label: 42 }), 400, false],
        [bound({ label: 'a\u0007b' }), 400, false],
        [bound({ label: 'a\u200bb' }), 400, false], // Cf
        [bound({ label: 'a\u2028b' }), 400, false], // Zl
        [bound({ authorize_params: { client_id: 'stranger' } }), 403, true], // not on --allow-client-id
        [bound({ authorization_server: 'https://auth.example.org/authorize' }), 403, true],
        [bound({ authorization_server: 'https://okta.com/oauth2/v1/authorize' }), 403, true], // never the bare suffix
        [bound({ authorization_server: 'https://evilokta.com/oauth2/v1/authorize' }), 403, true],
    ];
    for (const [body, status, schemaOk] of cases) {
        const { out } = await create(r, body, status);
        if (schemaOk !== null)
            assert.equal(schemaAccepts('SessionRequest', body), schemaOk, `request schema on ${JSON.stringify(body).slice(0, 160)}`);
        if (status === 201) {
            assert.ok(out.start_url, 'no start_url');
            assert.equal(out.expires_in, body.ttl || 600);
        }
        if (status === 400) assert.equal(out.error, 'invalid_request');
        if (status === 403)
            assert.equal(out.error, body.authorization_server === AS ? 'client_not_allowed' : 'authorization_server_not_allowed');
    }
    const { out: v1 } = await create(r, { authorization_server: AS, return_uri: RETURN }, 400);
    assert.equal(v1.error_description, 'authorize_params is required (protocol 1.1)');
    // a relay with --allow-unbound takes both shapes, and serves any client id without --allow-client-id
    const { out: b } = await create(relays.main, bound({ authorize_params: { client_id: 'anyone' } }));
    assert.ok(b.start_url);
    const { out: u } = await create(relays.main, { authorization_server: AS });
    assert.ok(u.state);
});

test('1.1 start page: 200 with the cookie, 400, 410; a GET never consumes the token', async () => {
    const r = relays.bound;
    const { out: s } = await create(r, bound({ label: '<b>Qorus</b> & "prod"' }));
    const first = await startPage(r, s.token);
    assert.equal(first.res.status, 200);
    assert.equal(first.res.headers['content-security-policy'], CSP_CONFIRM);
    assert.match(first.res.headers['set-cookie'][0], /; Max-Age=600; /);
    assert.match(first.cookie, /^[A-Za-z0-9_-]{43}$/);
    assert.match(first.csrf, /^[A-Za-z0-9_-]{43}$/);
    const page = first.page;
    assert.equal(field(page, 't'), s.token);
    assert.ok(page.includes('&lt;b&gt;Qorus&lt;/b&gt; &amp; &quot;prod&quot;') && !page.includes('<b>Qorus'), 'the label is not escaped');
    const dest = page.indexOf('example.com'), as = page.indexOf('auth.atlassian.com'), label = page.indexOf('&lt;b&gt;Qorus');
    assert.ok(dest > 0 && dest < as && as < label, 'destination, then AS, then label');
    assert.ok(page.includes('read:jira-work offline_access') && page.includes('api.atlassian.com'));
    assert.ok(page.includes('value="continue"') && page.includes('value="cancel"'));
    // again, with the cookie: 200, no new cookie, the same CSRF token
    const again = await startPage(r, s.token, first.cookie);
    assert.equal(again.res.status, 200);
    assert.equal(again.res.headers['set-cookie'], undefined);
    assert.equal(again.csrf, first.csrf);
    // 410: an unknown token (with and without a cookie: the page sets one when absent)
    const unknown = b64url(crypto.randomBytes(32));
    let x = await startPage(r, unknown);
    assert.equal(x.res.status, 410);
    assert.ok(x.cookie, 'no cookie set by the 410 page');
    x = await startPage(r, unknown, first.cookie);
    assert.equal(x.res.status, 410);
    // 400: no t, a malformed t, t twice
    for (const q of ['', '?t=', '?t=short', `?t=${s.token}x`, `?t=${s.token}&t=${s.token}`, `?x=${s.token}`]) {
        const res = await request(r, 'GET', `${START}${q}`);
        assert.equal(res.status, 400, q);
        conform(START, 'GET', res);
    }
});

test('1.1 confirmation POST: 403, 400, 413, 415 change nothing; Continue 303s to the AS once; then 410', async () => {
    const r = relays.bound;
    const { out: s } = await create(r, bound());
    const { cookie, csrf } = await startPage(r, s.token);
    const other = (await startPage(r, (await create(r, bound())).out.token)).cookie; // another browser
    const form = { t: s.token, csrf, action: 'continue' };
    const refused = [
        [form, {}], // no cookie
        [form, { cookie: 'not-a-cookie' }],
        [form, { cookie: b64url(crypto.randomBytes(32)) }], // a made-up cookie
        [form, { cookie: other }], // another browser's cookie: the CSRF token is not its
        [{ ...form, csrf: b64url(crypto.randomBytes(32)) }, { cookie }],
        [form, { cookie, origin: 'https://evil.example' }],
        [form, { cookie, origin: 'null' }],
    ];
    for (const [f, opts] of refused) {
        const res = await confirm(r, f, opts);
        assert.equal(res.status, 403, JSON.stringify(opts));
        conform(START, 'POST', res);
    }
    for (const body of ['', `t=${s.token}&csrf=${csrf}`, `t=${s.token}&csrf=${csrf}&action=maybe`, `csrf=${csrf}&action=continue`,
        `t=${s.token}&csrf=${csrf}&action=continue&action=continue`, `t=${s.token}&csrf=short&action=continue`]) {
        const res = await confirm(r, body, { cookie });
        assert.equal(res.status, 400, body);
        conform(START, 'POST', res);
    }
    let res = await confirm(r, `t=${s.token}&csrf=${csrf}&action=continue&pad=${'p'.repeat(8192)}`, { cookie });
    assert.equal(res.status, 413);
    conform(START, 'POST', res);
    for (const type of [null, 'application/json', 'multipart/form-data; boundary=x']) {
        res = await confirm(r, form, { cookie, type });
        assert.equal(res.status, 415, String(type));
        conform(START, 'POST', res);
    }
    // nothing changed: the page is still there, the pickup pending
    assert.equal((await startPage(r, s.token, cookie)).res.status, 200);
    assert.equal((await pickup(r, s)).status, 202);

    // Continue, with the relay's own Origin: 303 to the authorize URL the relay builds
    res = await confirm(r, form, { cookie, origin: r.base });
    assert.equal(res.status, 303);
    conform(START, 'POST', res);
    const loc = new URL(res.headers.location);
    assert.equal(`${loc.origin}${loc.pathname}`, AS);
    for (const [k, v] of Object.entries(PARAMS)) assert.equal(loc.searchParams.get(k), v, k);
    assert.equal(loc.searchParams.get('response_type'), 'code');
    assert.equal(loc.searchParams.get('redirect_uri'), `${r.base}/qorus-oauth2-redirect`);
    assert.ok(schemaAccepts('State', loc.searchParams.get('state')));
    assert.ok(res.headers.location.includes('scope=read%3Ajira-work%20offline_access'), res.headers.location);
    // used: a second POST (Continue or Cancel) and the page are 410
    for (const action of ['continue', 'cancel']) {
        res = await confirm(r, { ...form, action }, { cookie });
        assert.equal(res.status, 410, action);
        conform(START, 'POST', res);
    }
    assert.equal((await startPage(r, s.token, cookie)).res.status, 410);
    // unknown token with a valid cookie and a well-formed CSRF token
    res = await confirm(r, { ...form, t: b64url(crypto.randomBytes(32)) }, { cookie });
    assert.equal(res.status, 410);
    conform(START, 'POST', res);
});

test('1.1 callback: only in the confirming browser; the delivery page; the locked result opens with the release key', async () => {
    const r = relays.bound;
    const { s, cookie, state } = await confirmed(r);
    const other = (await startPage(r, (await create(r, bound())).out.token)).cookie;
    // another browser, or none: 403 on every callback variant, nothing stored
    for (const [alias, post] of [[false, false], [true, false], [false, true], [true, true]]) {
        for (const c of [undefined, other]) {
            const res = await callback(r, { code: 'attacker code', state }, { alias, post, cookie: c });
            assert.equal(res.status, 403, `${post ? 'POST' : 'GET'} ${alias ? CALLBACK_ALIAS : CALLBACK}`);
            const page = conform(alias ? CALLBACK_ALIAS : CALLBACK, post ? 'POST' : 'GET', res);
            assert.ok(page.includes('another browser'));
        }
    }
    assert.equal((await pickup(r, s)).status, 202);

    // the confirming browser: the delivery page, the waiting pickup woken with the locked result
    const waiting = pickup(r, s, { wait: 999 });
    await new Promise((ok) => setTimeout(ok, 300));
    let res = await callback(r, { code: 'the code', state, iss: 'https://auth.atlassian.com' }, { cookie });
    assert.equal(res.status, 200);
    const html = conform(CALLBACK, 'GET', res);
    assert.ok(!html.includes('the code') && !html.includes(state), 'the page carries the code or the state');
    assert.equal(res.headers.location, undefined);
    const release = delivery(html, res, s, 'success', '');
    res = await waiting;
    assert.equal(res.status, 200);
    const locked = conform(SESSION, 'GET', res);
    assert.deepEqual(Object.keys(locked).sort(), ['locked', 'status']);
    assert.equal(locked.status, 'locked');
    assert.ok(!res.text.includes('the code'));
    const plain = JSON.parse(unlock(locked.locked, release, s.session));
    assert.deepEqual(plain, { status: 'authorized', code: 'the code', state, iss: 'https://auth.atlassian.com' });
    validateAt('/components/schemas/Authorized', plain, 'the unlocked plaintext');
    assert.throws(() => unlock(locked.locked, b64url(crypto.randomBytes(32)), s.session), undefined, 'a wrong key opened it');
    assert.throws(() => unlock(locked.locked, release, 'AAAAAAAAAAAAAAAAAAAAAA'), undefined, 'another session opened it');
    // the first result stands
    res = await callback(r, { code: 'second', state }, { cookie });
    assert.equal(res.status, 409);
    conform(CALLBACK, 'GET', res);
    res = await del(r, s);
    assert.equal(res.status, 204);

    // the AS's error, through form_post on the alias: status=error, message=<error>, a locked denied result
    const d = await confirmed(r, { authorize_params: { ...PARAMS, response_mode: 'form_post' } });
    assert.equal(d.location.searchParams.get('response_mode'), 'form_post');
    res = await callback(r, { error: 'access_denied', error_description: 'User said no', state: d.state }, { cookie: d.cookie, alias: true, post: true });
    assert.equal(res.status, 200);
    const rel = delivery(conform(CALLBACK_ALIAS, 'POST', res), res, d.s, 'error', 'access_denied');
    const got = conform(SESSION, 'GET', await pickup(r, d.s));
    assert.equal(got.status, 'locked');
    assert.deepEqual(JSON.parse(unlock(got.locked, rel, d.s.session)), { status: 'denied', error: 'access_denied', error_description: 'User said no' });
});

test('1.1 Cancel: the cancelled page; the pickup is the plain denied object', async () => {
    const r = relays.bound;
    const { out: s } = await create(r, bound());
    const { cookie, csrf } = await startPage(r, s.token);
    let res = await confirm(r, { t: s.token, csrf, action: 'cancel' }, { cookie });
    assert.equal(res.status, 200);
    conform(START, 'POST', res);
    res = await pickup(r, s);
    assert.equal(res.status, 200);
    assert.deepEqual(conform(SESSION, 'GET', res), { status: 'denied', error: 'access_denied' });
    assert.equal((await startPage(r, s.token, cookie)).res.status, 410);
    res = await confirm(r, { t: s.token, csrf, action: 'continue' }, { cookie });
    assert.equal(res.status, 410);
    conform(START, 'POST', res);
});

test('1.1 with a seal_key: sealed, whose plaintext is the locked object (or the denied object after Cancel)', async () => {
    const r = relays.bound;
    const pair = x25519Pair();
    const { s, cookie, state } = await confirmed(r, { seal_key: pair.sealKey });
    let res = await callback(r, { code: 'sealed code', state }, { cookie });
    assert.equal(res.status, 200);
    const release = delivery(conform(CALLBACK, 'GET', res), res, s, 'success', '');
    const sealed = conform(SESSION, 'GET', await pickup(r, s));
    assert.equal(sealed.status, 'sealed');
    const inner = JSON.parse(unseal(sealed.sealed, pair.priv, pair.pub, s.session));
    validateAt('/components/schemas/Locked', inner, 'the unsealed plaintext');
    assert.deepEqual(JSON.parse(unlock(inner.locked, release, s.session)), { status: 'authorized', code: 'sealed code', state });

    const p2 = x25519Pair();
    const { out: c } = await create(r, bound({ seal_key: p2.sealKey }));
    const b = await startPage(r, c.token, cookie);
    res = await confirm(r, { t: c.token, csrf: b.csrf, action: 'cancel' }, { cookie });
    assert.equal(res.status, 200);
    const s2 = conform(SESSION, 'GET', await pickup(r, c));
    assert.equal(s2.status, 'sealed');
    assert.deepEqual(JSON.parse(unseal(s2.sealed, p2.priv, p2.pub, c.session)), { status: 'denied', error: 'access_denied' });
});

test('locked results: the documented unlocking opens the shipped vectors, and refuses the bad ones', () => {
    assert.ok(Array.isArray(LOCKED_VECTORS) && LOCKED_VECTORS.some((v) => v.valid) && LOCKED_VECTORS.some((v) => !v.valid));
    for (const v of LOCKED_VECTORS) {
        const open = () => unlock(v.locked, v.release, v.aad).toString('utf8');
        if (v.valid) assert.equal(open(), v.plaintext, v.description);
        else assert.throws(open, undefined, v.description);
    }
});

test('pickup and delete: 401, 404, Prefer handling', async () => {
    const r = relays.main;
    const { out: s } = await create(r, { authorization_server: AS });
    const cases = [
        [{ token: null }, 401],
        [{ token: 'wrong' }, 401],
        [{ token: null, headers: { Authorization: `Basic ${s.poll_token}` } }, 401],
        [{ token: null, headers: { Authorization: 'Bearer ' } }, 401],
        [{ token: 'wrong', wait: 1 }, 401],
        [{ wait: 0 }, 202],
        [{ wait: 1 }, 202],
        [{ headers: { Prefer: 'respond-async, wait=1' } }, 202],
        [{ headers: { Prefer: 'wait=abc' } }, 202],
    ];
    for (const [opts, status] of cases) {
        const res = await pickup(r, s, opts);
        assert.equal(res.status, status, JSON.stringify(opts));
        const body = conform(SESSION, 'GET', res);
        if (status === 401) assert.equal(res.headers['www-authenticate'], 'Bearer');
        if (opts.wait !== undefined) assert.equal(res.headers['preference-applied'], `wait=${opts.wait}`);
        if (opts.headers && opts.headers.Prefer === 'wait=abc') assert.equal(res.headers['preference-applied'], undefined);
        if (status === 202) assert.equal(body.status, 'pending');
    }
    const t0 = Date.now();
    let res = await pickup(r, s, { wait: 60 }); // above wait_max: lowered to it
    assert.equal(res.status, 202);
    assert.equal(res.headers['preference-applied'], `wait=${WAIT_MAX}`);
    assert.ok(Date.now() - t0 >= (WAIT_MAX - 0.5) * 1000, 'did not wait');
    conform(SESSION, 'GET', res);

    for (const token of [null, 'wrong']) {
        res = await del(r, s, token);
        assert.equal(res.status, 401);
        conform(SESSION, 'DELETE', res);
    }
    const unknown = { session: b64url(crypto.randomBytes(16)), poll_token: s.poll_token };
    const malformed = { session: 'not-a-session', poll_token: s.poll_token };
    for (const x of [unknown, malformed]) {
        res = await pickup(r, x, { wait: 1 });
        assert.equal(res.status, 404);
        conform(SESSION, 'GET', res);
        res = await del(r, x);
        assert.equal(res.status, 404);
        conform(SESSION, 'DELETE', res);
    }
    res = await del(r, s);
    assert.equal(res.status, 204);
    conform(SESSION, 'DELETE', res);
});

test('callback: malformed responses get 400 and store nothing', async () => {
    const r = relays.main;
    const { out: s } = await create(r, { authorization_server: AS });
    const forged = s.state.slice(0, -2) + (s.state.endsWith('AA') ? 'BA' : 'AA');
    const cases = [
        '',
        `code=x`,
        `code=x&state=${forged}`,
        `code=x&state=${s.state}&state=${s.state}`,
        `state=${s.state}`,
        `code=x&error=y&state=${s.state}`,
        `code=x&code=y&state=${s.state}`,
        `code=${'c'.repeat(8193)}&state=${s.state}`,
        `error=a%22b&state=${s.state}`,
        `error=x&error_description=${'d'.repeat(1025)}&state=${s.state}`,
        `code=x&error_description=y&state=${s.state}`,
        `code=x&state=${s.state}&bad=%zz`,
        `code=%00&state=${s.state}`,
    ];
    for (const q of cases) {
        for (const [p, post] of [[CALLBACK, false], [CALLBACK_ALIAS, false], [CALLBACK, true], [CALLBACK_ALIAS, true]]) {
            const res = post
                ? await request(r, 'POST', p, { headers: FORM_CT, body: q })
                : await request(r, 'GET', `${p}?${q}`);
            assert.equal(res.status, 400, `${post ? 'POST' : 'GET'} ${p} ${q.slice(0, 80)}`);
            conform(p, post ? 'POST' : 'GET', res);
        }
    }
    // GET without any query string
    for (const p of [CALLBACK, CALLBACK_ALIAS]) {
        const res = await request(r, 'GET', p);
        assert.equal(res.status, 400);
        conform(p, 'GET', res);
    }
    // the longest code is accepted: Atlassian codes are long JWTs
    const res = await callback(r, { code: 'c'.repeat(8192), state: s.state });
    assert.equal(res.status, 200);
    conform(CALLBACK, 'GET', res);
    const got = conform(SESSION, 'GET', await pickup(r, s));
    assert.equal(got.code.length, 8192);
});

test('callback POST: 413 over 16 KiB, 415 for another media type', async () => {
    const r = relays.main;
    const { out: s } = await create(r, { authorization_server: AS });
    for (const p of [CALLBACK, CALLBACK_ALIAS]) {
        let res = await request(r, 'POST', p, { headers: FORM_CT, body: `state=${s.state}&code=${'c'.repeat(16 * 1024)}` });
        assert.equal(res.status, 413);
        conform(p, 'POST', res);
        for (const headers of [{}, { 'Content-Type': 'application/json' }, { 'Content-Type': 'multipart/form-data; boundary=x' }]) {
            res = await request(r, 'POST', p, { headers, body: `code=x&state=${s.state}` });
            assert.equal(res.status, 415);
            conform(p, 'POST', res);
        }
    }
    // nothing was stored
    const res = await pickup(r, s);
    assert.equal(res.status, 202);
    conform(SESSION, 'GET', res);
});

test('414 for a query string over 16 KiB, on every operation', async () => {
    const r = relays.main;
    const { out: s } = await create(r, { authorization_server: AS });
    const auth = { Authorization: `Bearer ${s.poll_token}` };
    const calls = [
        ['/.well-known/authrelay', 'GET', '/.well-known/authrelay', {}],
        [SESSIONS, 'POST', SESSIONS, { headers: JSON_CT, body: JSON.stringify({ authorization_server: AS }) }],
        [SESSION, 'GET', `/v1/sessions/${s.session}`, { headers: auth }],
        [SESSION, 'DELETE', `/v1/sessions/${s.session}`, { headers: auth }],
        [CALLBACK, 'GET', CALLBACK, {}],
        [CALLBACK_ALIAS, 'GET', CALLBACK_ALIAS, {}],
        [CALLBACK, 'POST', CALLBACK, { headers: FORM_CT, body: `code=x&state=${s.state}` }],
        [CALLBACK_ALIAS, 'POST', CALLBACK_ALIAS, { headers: FORM_CT, body: `code=x&state=${s.state}` }],
        [START, 'GET', START, {}],
        [START, 'POST', START, { headers: FORM_CT, body: 't=x&csrf=y&action=continue' }],
    ];
    for (const [template, method, p, opts] of calls) {
        const res = await request(r, method, p + LONG_QUERY, opts);
        assert.equal(res.status, 414, `${method} ${p}`);
        conform(template, method, res);
    }
    // exactly 16 KiB is still accepted
    const res = await request(r, 'GET', `${CALLBACK}?code=x&state=${s.state}&pad=${'p'.repeat(16 * 1024 - 18 - s.state.length)}`);
    assert.equal(res.status, 200);
    conform(CALLBACK, 'GET', res);
});

test('405 with Allow for every method an endpoint does not accept', async () => {
    const r = relays.main;
    const sid = b64url(crypto.randomBytes(16));
    let n = 0;
    for (const [template, item] of Object.entries(SPEC.paths)) {
        for (const [method, op] of Object.entries(item)) {
            if (!Array.isArray(op.tags) || !op.tags.includes('not-allowed')) continue;
            const p = template.replace('{session}', sid);
            const res = await request(r, method.toUpperCase(), p, method === 'post' || method === 'put' || method === 'patch'
                ? { headers: JSON_CT, body: '{}' } : {});
            assert.equal(res.status, 405, `${method} ${p}`);
            conform(template, method.toUpperCase(), res);
            ++n;
        }
    }
    assert.ok(n >= 30, `only ${n} not-allowed operations documented`);
});

test('unknown paths get 404 not_found (documented in info.description)', async () => {
    for (const p of ['/', '/v1', '/v1/sessions/', '/v1/sessions/a/b', '/qorus-oauth2-redirect/x', '/v1/start/', '/v1/start/x']) {
        const res = await request(relays.main, 'GET', p);
        assert.equal(res.status, 404, p);
        for (const [h, v] of Object.entries(SECURITY_HEADERS)) assert.equal(res.headers[h], v);
        assert.equal(res.headers['content-type'], 'application/json');
        validateAt('/components/schemas/NotFoundError', JSON.parse(res.text), `GET ${p}`);
    }
});

test('429 with Retry-After once the rate limit is spent (creations, the start page and callbacks share it)', async () => {
    const r = relays.limited;
    const made = [];
    for (let i = 0; i < 5; ++i) made.push((await create(r, { authorization_server: AS })).out);
    const { res } = await create(r, { authorization_server: AS }, 429);
    assert.ok(Number(res.headers['retry-after']) >= 1);
    for (const [p, post] of [[CALLBACK, false], [CALLBACK_ALIAS, false], [CALLBACK, true], [CALLBACK_ALIAS, true]]) {
        const cb = await callback(r, { code: 'x', state: made[0].state }, { alias: p === CALLBACK_ALIAS, post });
        assert.equal(cb.status, 429, `${post ? 'POST' : 'GET'} ${p}`);
        conform(p, post ? 'POST' : 'GET', cb);
    }
    const t = b64url(crypto.randomBytes(32));
    let res2 = await request(r, 'GET', `${START}?t=${t}`);
    assert.equal(res2.status, 429);
    conform(START, 'GET', res2);
    res2 = await confirm(r, { t, csrf: t, action: 'continue' }, { cookie: t });
    assert.equal(res2.status, 429);
    conform(START, 'POST', res2);
    // pickups are not rate limited
    const pk = await pickup(r, made[0]);
    assert.equal(pk.status, 202);
    conform(SESSION, 'GET', pk);
});

test('503 with Retry-After while the store is down', async () => {
    const r = relays.down;
    const { out: s } = await create(relays.main, { authorization_server: AS }); // same keys: its state verifies on `down`
    const { res } = await create(r, { authorization_server: AS }, 503);
    assert.equal(res.headers['retry-after'], '2');
    let x = await pickup(r, s, { wait: 1 });
    assert.equal(x.status, 503);
    assert.equal(x.headers['preference-applied'], 'wait=1');
    conform(SESSION, 'GET', x);
    x = await del(r, s);
    assert.equal(x.status, 503);
    conform(SESSION, 'DELETE', x);
    for (const [p, post] of [[CALLBACK, false], [CALLBACK_ALIAS, false], [CALLBACK, true], [CALLBACK_ALIAS, true]]) {
        const cb = await callback(r, { code: 'x', state: s.state }, { alias: p === CALLBACK_ALIAS, post });
        assert.equal(cb.status, 503, `${post ? 'POST' : 'GET'} ${p}`);
        conform(p, post ? 'POST' : 'GET', cb);
    }
    // the start page and its forms (a cookie and a CSRF token of the main relay: the key file is shared)
    const { out: b } = await create(relays.main, bound());
    const { cookie, csrf } = await startPage(relays.main, b.token);
    x = await request(r, 'GET', `${START}?t=${b.token}`);
    assert.equal(x.status, 503);
    assert.equal(x.headers['retry-after'], '2');
    conform(START, 'GET', x);
    x = await confirm(r, { t: b.token, csrf, action: 'continue' }, { cookie });
    assert.equal(x.status, 503);
    conform(START, 'POST', x);
    // discovery does not need the store
    const d = await request(r, 'GET', '/.well-known/authrelay');
    assert.equal(d.status, 200);
    conform('/.well-known/authrelay', 'GET', d);
});

test('every documented operation and status was driven (except 500)', () => {
    const missing = [];
    for (const item of Object.values(SPEC.paths))
        for (const op of Object.values(item))
            if (op && op.responses)
                for (const status of Object.keys(op.responses))
                    if (status !== '500' && !seen.has(`${op.operationId} ${status}`)) missing.push(`${op.operationId} ${status}`);
    assert.deepEqual(missing, [], 'documented but never checked');
});

test('a body over 1 MiB gets the JSON 413 with the security headers', { todo: 'h2o answers it itself: text/plain, no security headers' }, async () => {
    const res = await request(relays.main, 'POST', SESSIONS, { headers: JSON_CT, body: 'x'.repeat(2 * 1024 * 1024) }).catch((e) => ({ status: 0, error: e }));
    assert.equal(res.status, 413);
    conform(SESSIONS, 'POST', res);
});
