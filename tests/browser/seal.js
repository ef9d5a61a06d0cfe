'use strict';
// seal.js: a second, independent implementation of the authrelay sealing format
// (docs/protocol.md, "Sealing") and of the 1.1 locked result (lock/unlock, below), on Node's crypto only:
//   eph = X25519 key pair; ikm = X25519(eph.private, R)
//   key = HKDF-SHA256(ikm, salt = eph.public || R, info = "authrelay seal v1", 32)
//   ct||tag = AES-256-GCM(key, nonce, plaintext, aad = session id)
//   sealed = base64url(0x01 || eph.public || nonce || ct || tag)
const crypto = require('node:crypto');

const VERSION = 0x01;
const INFO = Buffer.from('authrelay seal v1', 'ascii');
const KEY_LEN = 32;
const NONCE_LEN = 12;
const TAG_LEN = 16;
const OVERHEAD = 1 + KEY_LEN + NONCE_LEN + TAG_LEN; // 61
// DER prefixes of an X25519 key (RFC 8410): PKCS#8 private key, SubjectPublicKeyInfo public key
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

function toBuf(v, name) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v);
  throw new TypeError(`${name} must be a Buffer`);
}

function privateKeyObject(raw) {
  raw = toBuf(raw, 'private key');
  if (raw.length !== KEY_LEN) throw new Error('X25519 private key must be 32 bytes');
  return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

function publicKeyObject(raw) {
  raw = toBuf(raw, 'public key');
  if (raw.length !== KEY_LEN) throw new Error('X25519 public key must be 32 bytes');
  return crypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

function rawPublic(keyObject) {
  const der = keyObject.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - KEY_LEN));
}

function rawPrivate(keyObject) {
  const der = keyObject.export({ format: 'der', type: 'pkcs8' });
  return Buffer.from(der.subarray(der.length - KEY_LEN));
}

/** A fresh X25519 key pair as raw 32-byte buffers. */
function generateKeyPair() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519');
  return { privateKey: rawPrivate(privateKey), publicKey: rawPublic(publicKey) };
}

/** The raw public key of a raw private key. */
function publicFromPrivate(priv) {
  return rawPublic(crypto.createPublicKey(privateKeyObject(priv)));
}

/** X25519(priv, pub); throws on an all-zero result (low-order point). */
function x25519(priv, pub) {
  let shared;
  try {
    shared = crypto.diffieHellman({ privateKey: privateKeyObject(priv), publicKey: publicKeyObject(pub) });
  } catch (e) {
    throw new Error(`X25519 failed: ${e.message}`);
  }
  if (shared.length !== KEY_LEN || shared.every((b) => b === 0)) throw new Error('X25519 result is all zero');
  return Buffer.from(shared);
}

function deriveKey(ikm, ephPublic, recipientPublic) {
  const salt = Buffer.concat([ephPublic, recipientPublic]);
  return Buffer.from(crypto.hkdfSync('sha256', ikm, salt, INFO, KEY_LEN));
}

function b64urlDecodeStrict(s, name = 'sealed') {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw new Error(`${name} is not base64url`);
  const buf = Buffer.from(s, 'base64url');
  if (buf.toString('base64url') !== s) throw new Error(`${name} is not canonical base64url`);
  return buf;
}

/**
 * Seal plaintext to recipientPublic (raw 32 bytes) with aad (the session id, string or Buffer).
 * opts.ephemeralPrivate and opts.nonce fix the otherwise random values (test vectors only).
 * Returns the base64url text (no padding).
 */
function seal(recipientPublic, plaintext, aad, opts = {}) {
  recipientPublic = toBuf(recipientPublic, 'recipient public key');
  const ephPrivate = opts.ephemeralPrivate ? toBuf(opts.ephemeralPrivate, 'ephemeral private key') : generateKeyPair().privateKey;
  const ephPublic = publicFromPrivate(ephPrivate);
  const nonce = opts.nonce ? toBuf(opts.nonce, 'nonce') : crypto.randomBytes(NONCE_LEN);
  if (nonce.length !== NONCE_LEN) throw new Error('nonce must be 12 bytes');
  const ikm = x25519(ephPrivate, recipientPublic);
  const key = deriveKey(ikm, ephPublic, recipientPublic);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LEN });
  cipher.setAAD(Buffer.isBuffer(aad) ? aad : Buffer.from(aad, 'ascii'));
  const ct = Buffer.concat([cipher.update(Buffer.isBuffer(plaintext) ? plaintext : Buffer.from(plaintext, 'utf8')), cipher.final()]);
  const tag = cipher.getAuthTag();
  return Buffer.concat([Buffer.from([VERSION]), ephPublic, nonce, ct, tag]).toString('base64url');
}

/**
 * Open a sealed value with the recipient's raw private key (32 bytes) and aad; returns the plaintext Buffer.
 * Throws on any failure (format, version, low-order key, authentication).
 */
function unseal(recipientPrivate, sealed, aad) {
  const raw = b64urlDecodeStrict(sealed);
  if (raw.length < OVERHEAD) throw new Error('sealed value too short');
  if (raw[0] !== VERSION) throw new Error(`unknown seal version ${raw[0]}`);
  const ephPublic = raw.subarray(1, 1 + KEY_LEN);
  const nonce = raw.subarray(1 + KEY_LEN, 1 + KEY_LEN + NONCE_LEN);
  const ct = raw.subarray(1 + KEY_LEN + NONCE_LEN, raw.length - TAG_LEN);
  const tag = raw.subarray(raw.length - TAG_LEN);
  const recipientPublic = publicFromPrivate(recipientPrivate);
  const ikm = x25519(recipientPrivate, ephPublic);
  const key = deriveKey(ikm, Buffer.from(ephPublic), recipientPublic);
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LEN });
  decipher.setAAD(Buffer.isBuffer(aad) ? aad : Buffer.from(aad, 'ascii'));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ct), decipher.final()]);
}

// The locked result of a protocol 1.1 flow (docs/protocol.md, "The callback in 1.1"):
//   ct||tag = AES-256-GCM(release key (32 bytes), nonce (12 bytes), plaintext, aad = session id text)
//   locked = base64url(0x01 || nonce || ct || tag); the release key travels as base64url (43 characters)
const LOCK_VERSION = 0x01;
const LOCK_OVERHEAD = 1 + NONCE_LEN + TAG_LEN; // 29
const SESSION_ID_LEN = 22;

function sessionAad(sid) {
  const aad = Buffer.isBuffer(sid) ? sid : Buffer.from(String(sid), 'ascii');
  if (aad.length !== SESSION_ID_LEN) throw new Error('the session id must be 22 characters');
  return aad;
}

/**
 * Lock plaintext for session sid (its 22-character id text). opts.key (32 bytes) and opts.nonce (12 bytes) fix the
 * otherwise random values (test vectors only). Returns { locked, release }: base64url texts, no padding.
 */
function lock(plaintext, sid, opts = {}) {
  const key = opts.key ? toBuf(opts.key, 'key') : crypto.randomBytes(KEY_LEN);
  const nonce = opts.nonce ? toBuf(opts.nonce, 'nonce') : crypto.randomBytes(NONCE_LEN);
  if (key.length !== KEY_LEN) throw new Error('the release key must be 32 bytes');
  if (nonce.length !== NONCE_LEN) throw new Error('nonce must be 12 bytes');
  const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LEN });
  cipher.setAAD(sessionAad(sid));
  const ct = Buffer.concat([cipher.update(Buffer.isBuffer(plaintext) ? plaintext : Buffer.from(plaintext, 'utf8')), cipher.final()]);
  const locked = Buffer.concat([Buffer.from([LOCK_VERSION]), nonce, ct, cipher.getAuthTag()]).toString('base64url');
  return { locked, release: key.toString('base64url') };
}

/**
 * Open a locked value with the release key text and the session id text; returns the plaintext Buffer.
 * Throws on any failure (format, canonical base64url, version, key length, session, authentication).
 */
function unlock(release, locked, sid) {
  const key = b64urlDecodeStrict(release, 'release');
  if (key.length !== KEY_LEN) throw new Error('the release key must be 32 bytes');
  const raw = b64urlDecodeStrict(locked, 'locked');
  if (raw.length < LOCK_OVERHEAD) throw new Error('locked value too short');
  if (raw[0] !== LOCK_VERSION) throw new Error(`unknown lock version ${raw[0]}`);
  const nonce = raw.subarray(1, 1 + NONCE_LEN);
  const ct = raw.subarray(1 + NONCE_LEN, raw.length - TAG_LEN);
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LEN });
  decipher.setAAD(sessionAad(sid));
  decipher.setAuthTag(raw.subarray(raw.length - TAG_LEN));
  return Buffer.concat([decipher.update(ct), decipher.final()]);
}

module.exports = { seal, unseal, generateKeyPair, publicFromPrivate, x25519, deriveKey, OVERHEAD, lock, unlock, LOCK_OVERHEAD };
