'use strict';
// Checks every vector of tests/vectors/locked.json against lock/unlock of seal.js (Node's crypto), independently of the C code.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const S = require('./seal.js');

const vectors = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'vectors', 'locked.json'), 'utf8'));
const hex = (h) => Buffer.from(h, 'hex');
const SID = 'AAECAwQFBgcICQoLDA0ODw';

test('the vector file has valid and invalid vectors', () => {
  assert.ok(vectors.filter((v) => v.valid).length >= 3);
  assert.ok(vectors.filter((v) => !v.valid).length >= 10);
  assert.ok(vectors.some((v) => v.valid && /"status":"authorized"/.test(v.plaintext)));
  assert.ok(vectors.some((v) => v.valid && /"status":"denied"/.test(v.plaintext)));
});

vectors.forEach((v, i) => {
  test(`vector ${i + 1}: ${v.description}`, () => {
    assert.equal(typeof v.release, 'string');
    assert.equal(typeof v.aad, 'string');
    assert.equal(typeof v.locked, 'string');
    if (v.valid) {
      const key = hex(v.key);
      const nonce = hex(v.nonce);
      assert.equal(key.length, 32);
      assert.equal(nonce.length, 12);
      assert.equal(v.aad.length, 22);
      assert.equal(key.toString('base64url'), v.release, 'release is the key in base64url');
      const mine = S.lock(Buffer.from(v.plaintext, 'ascii'), v.aad, { key, nonce });
      assert.equal(mine.locked, v.locked, 'locked byte for byte');
      assert.equal(mine.release, v.release);
      const raw = Buffer.from(v.locked, 'base64url');
      assert.equal(raw[0], 1);
      assert.equal(raw.subarray(1, 13).toString('hex'), v.nonce);
      assert.equal(raw.length, S.LOCK_OVERHEAD + Buffer.byteLength(v.plaintext));
      assert.equal(S.unlock(v.release, v.locked, v.aad).toString('ascii'), v.plaintext, 'opens');
      if (v.plaintext.length) JSON.parse(v.plaintext);
    } else {
      assert.throws(() => S.unlock(v.release, v.locked, v.aad), 'must fail');
    }
  });
});

test('the version byte is checked on its own: the tag does not cover it', () => {
  const v = vectors.find((x) => !x.valid && /version byte 0x02/.test(x.description));
  assert.ok(v, 'the vector file has the version 0x02 vector');
  const raw = Buffer.from(v.locked, 'base64url');
  assert.equal(raw[0], 2);
  // with the version byte ignored, the tag verifies
  const d = require('node:crypto').createDecipheriv('aes-256-gcm', Buffer.from(v.release, 'base64url'), raw.subarray(1, 13));
  d.setAAD(Buffer.from(v.aad, 'ascii'));
  d.setAuthTag(raw.subarray(raw.length - 16));
  Buffer.concat([d.update(raw.subarray(13, raw.length - 16)), d.final()]);
  assert.throws(() => S.unlock(v.release, v.locked, v.aad), /version/);
});

test('non-canonical texts that a lax decoder reads as the right bytes are refused', () => {
  for (const v of vectors.filter((x) => !x.valid && /canonical|padding|standard base64/.test(x.description))) {
    assert.throws(() => S.unlock(v.release, v.locked, v.aad), /base64url/, v.description);
  }
});

test('random round trip; any byte changed, another session or key fails', () => {
  const pt = JSON.stringify({ status: 'authorized', code: 'x'.repeat(5000), state: 's' });
  const { locked, release } = S.lock(pt, SID);
  assert.equal(release.length, 43);
  assert.equal(S.unlock(release, locked, SID).toString(), pt);
  const again = S.lock(pt, SID);
  assert.notEqual(again.release, release, 'the key is random');
  assert.notEqual(again.locked.slice(0, 17), locked.slice(0, 17), 'the nonce is random');
  assert.throws(() => S.unlock(again.release, locked, SID), 'another key');
  assert.throws(() => S.unlock(release, locked, 'EBESExQVFhcYGRobHB0eHw'), 'another session');
  const raw = Buffer.from(locked, 'base64url');
  for (const pos of [0, 1, 12, 13, 100, raw.length - 17, raw.length - 16, raw.length - 1]) {
    const t = Buffer.from(raw);
    t[pos] ^= 0x01;
    assert.throws(() => S.unlock(release, t.toString('base64url'), SID), `byte ${pos}`);
  }
  assert.throws(() => S.unlock(release, locked + '=', SID), 'padding');
  assert.throws(() => S.unlock(release.slice(0, 42), locked, SID), 'a short key');
  assert.throws(() => S.unlock(release, locked.slice(0, 38), SID), 'shorter than the overhead');
  assert.throws(() => S.lock(pt, 'short'), 'a session id of 22 characters');
});
