// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSelfSignedCa, generateKeyPair } from '../../../../src/shared/pki/x509.js';
import { decodeBase64Body, decodeCertsOnly, encodeBase64Body, encodeCertsOnly } from '../../../../src/shared/est/pkcs7.js';
import { derOid, encodeCsrAttrs } from '../../../../src/enroll/core/csrattrs.js';
import { estOperationUrl, parseRetryAfter } from '../../../../src/shared/est/protocol.js';
import { parseMbr, firstPartitionStart } from '../../../../src/factory/core/mbr.js';
import { fwtoolDataLength } from '../../../../src/factory/core/fwtool.js';
import { hasCode } from '../../../../src/shared/errors.js';

test('certs-only PKCS#7 round-trips several certificates in order', async () => {
  const certs = [];
  for (const cn of ['A', 'B']) {
    const k = await generateKeyPair();
    certs.push(await createSelfSignedCa({ cn }, k, new Date(0), new Date(2e12)));
  }
  const der = encodeCertsOnly(certs.map((c) => new Uint8Array(c.rawData)));
  const back = decodeCertsOnly(der);
  assert.deepEqual(back.map((b) => b.toString('hex')), certs.map((c) => Buffer.from(c.rawData).toString('hex')));
});

test('a non-CMS body is a CK_ERR_EST error, not a crash', () => {
  assert.throws(() => decodeCertsOnly(Buffer.from('nonsense')), (e) => hasCode(e, 'CK_ERR_EST'));
  assert.throws(() => decodeBase64Body('not base64 !!'), (e) => hasCode(e, 'CK_ERR_EST'));
});

test('base64 bodies use 64-column CRLF lines and decode with whitespace', () => {
  const data = Buffer.from(Array.from({ length: 200 }, (_, i) => i));
  const b64 = encodeBase64Body(data);
  assert.ok(b64.split('\r\n').every((l) => l.length <= 64));
  assert.deepEqual(decodeBase64Body(b64), data);
  assert.deepEqual(decodeBase64Body(b64.replace(/\r\n/g, '\n  ')), data);
});

test('OIDs encode as DER (X.690 8.19), including multi-byte arcs', () => {
  assert.equal(derOid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
  assert.equal(derOid('2.5.4.5').toString('hex'), '0603550405');
  const attrs = encodeCsrAttrs();
  assert.equal(attrs[0], 0x30);
  assert.equal(attrs[1], attrs.length - 2);
});

test('Retry-After: delta-seconds and HTTP-date', () => {
  assert.equal(parseRetryAfter('120', 0), 120);
  assert.equal(parseRetryAfter(new Date(60_000).toUTCString(), 0), 60);
  assert.equal(parseRetryAfter(undefined, 0), undefined);
  assert.equal(parseRetryAfter('soon', 0), undefined);
});

test('EST URLs: base with or without /.well-known/est', () => {
  assert.equal(estOperationUrl('https://h:8443/.well-known/est', 'cacerts').href, 'https://h:8443/.well-known/est/cacerts');
  assert.equal(estOperationUrl('https://h:8443/.well-known/est/', 'simpleenroll').href, 'https://h:8443/.well-known/est/simpleenroll');
  assert.equal(estOperationUrl('https://h', 'csrattrs').href, 'https://h/.well-known/est/csrattrs');
});

function mbrWith(parts: [type: number, startLba: number, count: number][]): Buffer {
  const s = Buffer.alloc(512);
  parts.forEach(([type, start, count], i) => {
    const e = 446 + i * 16;
    s[e + 4] = type;
    s.writeUInt32LE(start, e + 8);
    s.writeUInt32LE(count, e + 12);
  });
  s[510] = 0x55;
  s[511] = 0xaa;
  return s;
}

test('MBR: the rockchip layout, empty slots, GPT and a missing signature', () => {
  const r = parseMbr(mbrWith([[0x83, 65536, 32768], [0x83, 131072, 212992]]));
  assert.ok(r.ok);
  assert.equal(firstPartitionStart(r), 32 * 1024 * 1024);
  assert.equal(r.partitions.length, 2);
  const g = parseMbr(mbrWith([[0xee, 1, 1000]]));
  assert.ok(g.ok && g.protectiveGpt);
  assert.equal(parseMbr(Buffer.alloc(512)).ok, false);
  assert.equal(parseMbr(Buffer.alloc(10)).ok, false);
});

test('fwtool trailers are stripped from the end of a sysupgrade image', () => {
  const data = Buffer.alloc(1000, 1);
  const chunk = (type: number, body: Buffer): Buffer => {
    const t = Buffer.alloc(16);
    t.writeUInt32BE(0x46577830, 0);
    t[8] = type;
    t.writeUInt32BE(body.length + 16, 12);
    return Buffer.concat([body, t]);
  };
  const file = Buffer.concat([data, chunk(1, Buffer.from('{"x":1}')), chunk(0, Buffer.alloc(40, 9))]);
  const readAt = (pos: number, len: number): Buffer => file.subarray(pos, pos + len);
  assert.equal(fwtoolDataLength(file.length, readAt), 1000);
  assert.equal(fwtoolDataLength(data.length, (p, l) => data.subarray(p, p + l)), 1000);
});
