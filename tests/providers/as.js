// as.js: a tiny authorization server on loopback for tests/providers/iss.test.js: RFC 8414 metadata that says
// authorization_response_iss_parameter_supported, and an authorize endpoint that answers at once, as if the user had
// decided: an error redirect (access_denied) by default, a code when the request has x_outcome=approve; with iss (RFC 9207)
// unless started with sendIss: false; by 302 (query) or by an auto-submitting form (response_mode=form_post).
// It never reads a token request: the relay's instance-side contract ends with the authorization response.
import http from 'node:http';
import crypto from 'node:crypto';

const escapeHtml = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/**
 * Starts an AS on 127.0.0.1 (a free port). options.sendIss (default true): put iss on every authorization response.
 * Resolves to {issuer, metadata, requests: [URL of each authorize request], close()}.
 */
export function startAs({ sendIss = true } = {}) {
  const requests = [];
  let issuer;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, issuer);
    if (req.method === 'GET' && url.pathname === '/.well-known/oauth-authorization-server') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      return res.end(JSON.stringify(metadata()));
    }
    if (req.method === 'GET' && url.pathname === '/authorize') {
      requests.push(url);
      const q = url.searchParams;
      const redirectUri = q.get('redirect_uri');
      if (!redirectUri || q.get('response_type') !== 'code' || !q.get('client_id')) {
        res.writeHead(400, { 'Content-Type': 'text/plain' });
        return res.end('bad authorization request');
      }
      const fields = [];
      if (q.get('x_outcome') === 'approve') {
        fields.push(['code', crypto.randomBytes(24).toString('base64url')]);
      } else {
        fields.push(['error', 'access_denied']);
        fields.push(['error_description', 'The resource owner denied the request']);
        fields.push(['error_uri', `${issuer}/errors/access_denied`]);
      }
      if (q.has('state')) fields.push(['state', q.get('state')]);
      if (sendIss) fields.push(['iss', issuer]);
      if (q.get('response_mode') === 'form_post') {
        const inputs = fields
          .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
          .join('');
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
        return res.end(
          `<!doctype html><html><body onload="document.forms[0].submit()">` +
            `<form method="post" action="${escapeHtml(redirectUri)}">${inputs}</form></body></html>`,
        );
      }
      const to = new URL(redirectUri);
      for (const [k, v] of fields) to.searchParams.append(k, v);
      res.writeHead(302, { Location: to.href, 'Cache-Control': 'no-store' });
      return res.end();
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found');
  });
  const metadata = () => ({
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    response_types_supported: ['code'],
    response_modes_supported: ['query', 'form_post'],
    grant_types_supported: ['authorization_code'],
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      issuer = `http://127.0.0.1:${server.address().port}`;
      resolve({
        issuer,
        metadata: metadata(),
        requests,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}
