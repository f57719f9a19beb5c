// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { appendFwMetadata, dropFwSignatures, readFwMetadata } from '../../../../src/image/core/fw-metadata.js';

const META = { metadata_version: '1.1', compat_version: '1.0', supported_devices: ['friendlyarm,nanopi-r3s'] };

test('metadata appended by us reads back, with the payload length before it', () => {
  const image = Buffer.from('gzip payload bytes');
  const r = readFwMetadata(appendFwMetadata(image, META));
  assert.ok(r.ok);
  assert.deepEqual(r.metadata.supported_devices, ['friendlyarm,nanopi-r3s']);
  assert.equal(r.payloadLength, image.length);
});

test('one changed byte anywhere before the trailer is a CRC error', () => {
  const withMeta = appendFwMetadata(Buffer.from('gzip payload bytes'), META);
  for (const at of [0, 5, withMeta.length - 20]) {
    const bad = Buffer.from(withMeta);
    bad[at] = (bad[at] as number) ^ 1;
    const r = readFwMetadata(bad);
    assert.equal(r.ok, false, `byte ${at}`);
  }
});

test('an image without a trailer says so', () => {
  assert.deepEqual(readFwMetadata(Buffer.alloc(100)), { ok: false, problem: 'no-trailer' });
  assert.deepEqual(readFwMetadata(Buffer.alloc(3)), { ok: false, problem: 'no-trailer' });
});

test('a signature block after the metadata (fwtool -S) is skipped', () => {
  const withMeta = appendFwMetadata(Buffer.from('payload'), META);
  // A type-0 block as fwtool -S appends it: data, then a trailer whose CRC covers every byte before it.
  // fwtool's CRC state is zlib's CRC-32 without the final inversion.
  const sig = Buffer.from('untrusted comment: sig\nRWQ...\n');
  const before = Buffer.concat([withMeta, sig]);
  const tr = Buffer.alloc(16);
  tr.writeUInt32BE(0x46577830, 0);
  tr.writeUInt32BE(~crc32(before) >>> 0, 4);
  tr.writeUInt8(0, 8);
  tr.writeUInt32BE(sig.length + 16, 12);
  const r = readFwMetadata(Buffer.concat([before, tr]));
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.metadata.supported_devices, ['friendlyarm,nanopi-r3s']);
});

/** What `fwtool -S` appends: data + trailer {magic, crc over everything before, type 0, size}. */
function appendSignature(image: Buffer, data: Buffer): Buffer {
  const crc = ~crc32(Buffer.concat([image, data])) >>> 0;
  const trailer = Buffer.alloc(16);
  trailer.writeUInt32BE(0x46577830, 0);
  trailer.writeUInt32BE(crc >>> 0, 4);
  trailer.writeUInt8(0, 8);
  trailer.writeUInt32BE(data.length + 16, 12);
  return Buffer.concat([image, data, trailer]);
}

test('signature blocks from a per-build key are dropped: two signed builds become the same bytes', () => {
  const unsigned = appendFwMetadata(Buffer.from('gzip payload bytes'), META);
  const a = appendSignature(unsigned, Buffer.from('ucert+sig of random key A'));
  const b = appendSignature(unsigned, Buffer.from('ucert+sig of random key B, longer'));
  assert.ok(readFwMetadata(a).ok, 'the reader skips the signature');
  assert.ok(!a.equals(b));
  const da = dropFwSignatures(a);
  const db = dropFwSignatures(b);
  assert.equal(da.dropped, 1);
  assert.ok(da.bytes.equals(unsigned) && db.bytes.equals(unsigned));
  const md = readFwMetadata(da.bytes);
  assert.ok(md.ok);
  assert.deepEqual(md.metadata.supported_devices, ['friendlyarm,nanopi-r3s']);
});

test('an image without a signature, or with a damaged one, is left as it is', () => {
  const unsigned = appendFwMetadata(Buffer.from('gzip payload bytes'), META);
  assert.deepEqual(dropFwSignatures(unsigned), { bytes: unsigned, dropped: 0 });
  const signed = appendSignature(unsigned, Buffer.from('sig'));
  const bad = Buffer.from(signed);
  bad[unsigned.length] = (bad[unsigned.length] as number) ^ 1; // inside the signature data: its CRC fails
  assert.equal(dropFwSignatures(bad).dropped, 0);
});
