'use strict';
// Process and HTTP helpers of the browser tests: every child bound to loopback, every wait bounded,
// every child killed by cleanup().
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const AUTHRELAY_BIN = process.env.AUTHRELAY_BIN
  ? path.resolve(process.env.AUTHRELAY_BIN)
  : path.resolve(__dirname, '..', '..', 'build', 'authrelay');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO, 'tests', 'artifacts');

const children = new Set();
const tmpDirs = new Set();

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** A port free on 127.0.0.1 right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function tmpDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.add(d);
  return d;
}

/**
 * Spawn a child whose stdout and stderr are captured (and optionally teed to files); stdin: true gives it a pipe
 * (c.proc.stdin), else it reads nothing.
 * Returns {proc, out(), err(), exited: Promise<{code, signal}>, waitFor(stream, regex, ms)}.
 */
function start(cmd, args, { env, name, cwd, logFile, stdin = false } = {}) {
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, cwd, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const c = { name: name || path.basename(cmd), proc, stdout: '', stderr: '', done: false, code: null, signal: null };
  const sink = logFile ? fs.createWriteStream(logFile) : null;
  const waiters = [];
  const check = () => {
    for (const w of [...waiters]) {
      const m = w.re.exec(c[w.stream]);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(m);
      }
    }
  };
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (d) => {
    c.stdout += d;
    if (sink) sink.write(d);
    check();
  });
  proc.stderr.on('data', (d) => {
    c.stderr += d;
    if (sink) sink.write(d);
    check();
  });
  c.exited = new Promise((resolve) => {
    proc.on('error', (e) => {
      c.stderr += `spawn error: ${e.message}\n`;
      c.done = true;
      resolve({ code: -1, signal: null });
    });
    proc.on('close', (code, signal) => {
      c.done = true;
      c.code = code;
      c.signal = signal;
      children.delete(c);
      if (sink) sink.end();
      for (const w of waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error(`${c.name} exited (${code ?? signal}) before ${w.re} appeared on ${w.stream}; stderr: ${c.stderr.slice(-2000)}`));
      }
      resolve({ code, signal });
    });
  });
  /** Resolves with the match of re on the whole captured stream; rejects after ms or when the child exits. */
  c.waitFor = (stream, re, ms) =>
    new Promise((resolve, reject) => {
      const m = re.exec(c[stream]);
      if (m) return resolve(m);
      if (c.done) return reject(new Error(`${c.name} already exited; stderr: ${c.stderr.slice(-2000)}`));
      const w = { stream, re, resolve, reject };
      w.timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(new Error(`timeout (${ms} ms) waiting for ${re} on ${c.name}'s ${stream}; stderr: ${c.stderr.slice(-2000)}`));
      }, ms);
      waiters.push(w);
    });
  /** Waits at most ms for the exit; kills it then. */
  c.wait = async (ms) => {
    let timer;
    const r = await Promise.race([c.exited, new Promise((res) => (timer = setTimeout(() => res(null), ms)))]);
    clearTimeout(timer);
    if (r === null) {
      await stop(c);
      throw new Error(`${c.name} did not exit within ${ms} ms; stderr: ${c.stderr.slice(-2000)}`);
    }
    return r;
  };
  children.add(c);
  return c;
}

/** SIGTERM, then SIGKILL after ms; resolves when the child is gone. */
async function stop(c, ms = 5000) {
  if (!c || c.done) return;
  try {
    c.proc.kill('SIGTERM');
  } catch {
    /* gone */
  }
  let timer;
  const r = await Promise.race([c.exited, new Promise((res) => (timer = setTimeout(() => res(null), ms)))]);
  clearTimeout(timer);
  if (r === null) {
    try {
      c.proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
    await Promise.race([c.exited, sleep(2000)]);
  }
}

async function cleanup() {
  await Promise.all([...children].map((c) => stop(c)));
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
  tmpDirs.clear();
}

/** A self-signed certificate for localhost and 127.0.0.1 (openssl CLI). */
function makeCert(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
      '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,digitalSignature,keyCertSign'],
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20000 }
  );
  return { cert, key };
}

/** One HTTP(S) request; resolves {status, headers, body (string)}. Bounded by ms. */
function request(url, { method = 'GET', headers = {}, body, ca, ms = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      u,
      { method, headers: body !== undefined ? { 'Content-Length': Buffer.byteLength(body), ...headers } : headers, ca, agent: false, timeout: ms },
      (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      }
    );
    req.on('timeout', () => req.destroy(new Error(`timeout (${ms} ms): ${method} ${url}`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Polls url until it answers 200 or ms pass. */
async function waitHttpOk(url, ms, opts = {}) {
  const end = Date.now() + ms;
  let last = '';
  while (Date.now() < end) {
    try {
      const r = await request(url, { ...opts, ms: 2000 });
      if (r.status === 200) return r;
      last = `status ${r.status}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(100);
  }
  throw new Error(`${url} not ready within ${ms} ms (${last})`);
}

/** redis-server on a free loopback port, nothing persisted. */
async function startRedis(dir) {
  const port = await freePort();
  const c = start('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir,
    '--protected-mode', 'yes'], { name: 'redis-server' });
  await c.waitFor('stdout', /Ready to accept connections/, 15000);
  return { c, port, url: `redis://127.0.0.1:${port}` };
}

/** The fake AS on a free loopback port. */
async function startFakeAs(extra = []) {
  const c = start(process.execPath, [path.join(REPO, 'tests', 'fake-as', 'server.js'), '--port', '0', ...extra], { name: 'fake-as' });
  const m = await c.waitFor('stdout', /^listening (\d+)$/m, 15000);
  const port = Number(m[1]);
  return { c, port, base: `http://127.0.0.1:${port}` };
}

/**
 * The relay: serve over TLS on loopback with Redis, its output teed to a log file. extraArgs are appended (e.g.
 * ['--allow-unbound'] for version-1 sessions, which a 1.1 relay refuses by default).
 */
async function startRelay({ dir, redisUrl, cert, key, logFile, extraArgs = [] }) {
  const keys = path.join(dir, 'keys.json');
  execFileSync(AUTHRELAY_BIN, ['keygen', keys], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 });
  const port = await freePort();
  const adminPort = await freePort();
  const args = ['serve', '--dev', // --dev: the only way a plain-http loopback AS (the fake AS) is accepted
    '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`, '--tls-cert', cert, '--tls-key', key,
    '--keys', keys, '--public-url', `https://localhost:${port}`, '--redis', redisUrl, '--rate-limit', '0', '--threads', '2',
    '--shutdown-grace', '2', ...extraArgs];
  const c = start(AUTHRELAY_BIN, args, { name: 'authrelay', logFile });
  await waitHttpOk(`http://127.0.0.1:${adminPort}/readyz`, 20000);
  return { c, port, adminPort, base: `https://localhost:${port}`, args };
}

/** The instance's own UI page: GET /grant shows the outcome it is told in its query. */
function startInstancePage() {
  const seen = [];
  const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]);
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://instance.invalid');
    seen.push({ path: u.pathname, query: Object.fromEntries(u.searchParams), referer: req.headers.referer || null });
    if (u.pathname !== '/grant') {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      return res.end('not found');
    }
    const status = u.searchParams.get('status') || '(none)';
    const message = u.searchParams.get('message');
    const text = status === 'success' ? 'Authorization: success' : `Authorization: ${status}${message ? ` (${message})` : ''}`;
    const html =
      '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Qorus - OAuth2 authorization</title>' +
      '<style>body{font-family:system-ui,sans-serif;margin:3rem;color:#172b4d}#status{font-size:1.5rem}</style></head>' +
      `<body><h1>Qorus Integration Engine</h1><p id="status">${esc(text)}</p></body></html>`;
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store',
      'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'" });
    res.end(html);
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        server,
        port,
        seen,
        returnUri: `http://127.0.0.1:${port}/grant`,
        close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}

/** Does `authrelay client --help` work yet? */
function clientAvailable() {
  try {
    execFileSync(AUTHRELAY_BIN, ['client', '--help'], { stdio: 'ignore', timeout: 10000 });
    return true;
  } catch {
    return false;
  }
}

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-extensions', '--no-default-browser-check',
  '--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication,NetworkTimeServiceQuerying',
  '--metrics-recording-only', '--password-store=basic', '--use-mock-keychain'];

/** Debian's chromium through playwright-core, headless, with a fresh profile; never a downloaded browser. */
async function launchBrowser() {
  const { chromium } = require('playwright-core');
  const profile = tmpDir('authrelay-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    ignoreHTTPSErrors: true, // the relay's self-signed certificate
    viewport: { width: 1000, height: 700 },
    timeout: 30000,
    chromiumSandbox: false,
  });
  context.setDefaultTimeout(15000);
  context.setDefaultNavigationTimeout(20000);
  return context;
}

/**
 * Debian's chromium through playwright-core as a Browser (not a persistent profile), for tests that need several
 * isolated browsers at once: each newContext() is a fresh profile with its own cookie jar. Never a downloaded browser.
 */
async function launchChromium() {
  const { chromium } = require('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30000, chromiumSandbox: false });
}

/** A fresh context (an isolated "browser": own cookies, cache, storage) of a Browser from launchChromium(). */
async function newContext(browser, opts = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true, // the relay's self-signed certificate
    viewport: { width: 1000, height: 700 },
    ...opts,
  });
  context.setDefaultTimeout(15000);
  context.setDefaultNavigationTimeout(20000);
  return context;
}

module.exports = {
  REPO, AUTHRELAY_BIN, ARTIFACTS, CHROMIUM, sleep, freePort, tmpDir, start, stop, cleanup, makeCert, request, waitHttpOk,
  startRedis, startFakeAs, startRelay, startInstancePage, clientAvailable, launchBrowser, launchChromium, newContext,
};
