'use strict';
// Checks every vector of tests/vectors/seal.json against seal.js (Node's crypto), independently of the C code.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const S = require('./seal.js');

const vectors = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'vectors', 'seal.json'), 'utf8'));
const hex = (h) => Buffer.from(h, 'hex');

test('the vector file has valid and invalid vectors', () => {
  assert.ok(vectors.filter((v) => v.valid).length >= 1);
  assert.ok(vectors.filter((v) => !v.valid).length >= 1);
});

vectors.forEach((v, i) => {
  test(`vector ${i + 1}: ${v.description}`, () => {
    const recipientPrivate = hex(v.recipient_private);
    const recipientPublic = hex(v.recipient_public);
    assert.equal(recipientPrivate.length, 32);
    assert.equal(recipientPublic.length, 32);
    if (v.valid) {
      assert.deepEqual(S.publicFromPrivate(recipientPrivate), recipientPublic, 'recipient_public from recipient_private');
      const ephPrivate = hex(v.ephemeral_private);
      assert.deepEqual(S.publicFromPrivate(ephPrivate), hex(v.ephemeral_public), 'ephemeral_public');
      const ikm = S.x25519(ephPrivate, recipientPublic);
      assert.equal(ikm.toString('hex'), v.shared_secret, 'shared_secret');
      assert.equal(S.x25519(recipientPrivate, hex(v.ephemeral_public)).toString('hex'), v.shared_secret, 'shared_secret, other side');
      assert.equal(S.deriveKey(ikm, hex(v.ephemeral_public), recipientPublic).toString('hex'), v.key, 'key');
      const sealed = S.seal(recipientPublic, Buffer.from(v.plaintext, 'ascii'), v.aad, { ephemeralPrivate: ephPrivate, nonce: hex(v.nonce) });
      assert.equal(sealed, v.sealed, 'sealed byte for byte');
      const raw = Buffer.from(v.sealed, 'base64url');
      assert.equal(raw[0], 1);
      assert.equal(raw.subarray(1, 33).toString('hex'), v.ephemeral_public);
      assert.equal(raw.subarray(33, 45).toString('hex'), v.nonce);
      assert.equal(S.unseal(recipientPrivate, v.sealed, v.aad).toString('ascii'), v.plaintext, 'opens');
      // the result JSON parses (or is empty)
      if (v.plaintext.length) JSON.parse(v.plaintext);
    } else {
      assert.throws(() => S.unseal(recipientPrivate, v.sealed, v.aad), 'must fail');
    }
  });
});

test('random round trip, and tampering of any byte fails', () => {
  const kp = S.generateKeyPair();
  const aad = 'AAECAwQFBgcICQoLDA0ODw';
  const pt = JSON.stringify({ status: 'authorized', code: 'x'.repeat(5000), state: 's' });
  const sealed = S.seal(kp.publicKey, pt, aad);
  assert.equal(S.unseal(kp.privateKey, sealed, aad).toString(), pt);
  assert.notEqual(S.seal(kp.publicKey, pt, aad), sealed, 'ephemeral key and nonce are random');
  const raw = Buffer.from(sealed, 'base64url');
  for (const pos of [0, 1, 32, 33, 44, 45, raw.length - 17, raw.length - 1]) {
    const t = Buffer.from(raw);
    t[pos] ^= 0x01;
    assert.throws(() => S.unseal(kp.privateKey, t.toString('base64url'), aad), `byte ${pos}`);
  }
  assert.throws(() => S.unseal(kp.privateKey, sealed + '=', aad), 'padding is not base64url');
  assert.throws(() => S.unseal(kp.privateKey, sealed.replace(/.$/, '+'), aad), 'non-base64url character');
});

test('the all-zero vector is rejected for its X25519 result, not its tag', () => {
  const crypto = require('node:crypto');
  const v = vectors.find((x) => !x.valid && /all-zero/.test(x.description));
  assert.ok(v, 'the vector file has the all-zero vector');
  const raw = Buffer.from(v.sealed, 'base64url');
  assert.ok(raw.subarray(1, 33).every((b) => b === 0), 'its ephemeral public key is all zero');
  // with an all-zero shared secret the tag verifies: so only the all-zero check can reject it
  const key = S.deriveKey(Buffer.alloc(32), raw.subarray(1, 33), hex(v.recipient_public));
  const d = crypto.createDecipheriv('aes-256-gcm', key, raw.subarray(33, 45));
  d.setAAD(Buffer.from(v.aad, 'ascii'));
  d.setAuthTag(raw.subarray(raw.length - 16));
  Buffer.concat([d.update(raw.subarray(45, raw.length - 16)), d.final()]);
  assert.throws(() => S.unseal(hex(v.recipient_private), v.sealed, v.aad), /X25519/);
});
