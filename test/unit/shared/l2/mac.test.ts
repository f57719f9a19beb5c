// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../../../../src/shared/errors.js';
import {
  BROADCAST_MAC_KEY,
  isBroadcastKey,
  isMulticastKey,
  isReservedGroupKey,
  macKey,
  macKeyAt,
  macKeyToBuffer,
  macToString,
  parseMac,
  writeMacKey,
} from '../../../../src/shared/l2/mac.js';
import { prng, randBytes, seedFromEnv } from '../../../helpers/prng.js';

test('MAC keys and bytes convert both ways exactly, including the extremes', () => {
  const seed = seedFromEnv('CK_SEED');
  const rand = prng(seed);
  const samples: Buffer[] = [Buffer.alloc(6), Buffer.alloc(6, 0xff), Buffer.from('800000000001', 'hex')];
  for (let i = 0; i < 2000; i++) samples.push(randBytes(rand, 6));
  for (const b of samples) {
    const key = macKeyAt(b, 0);
    assert.ok(key >= 0 && key <= BROADCAST_MAC_KEY && Number.isInteger(key), `seed ${seed}`);
    assert.deepEqual(macKeyToBuffer(key), b, `seed ${seed}`);
    const out = Buffer.alloc(10, 0xaa);
    writeMacKey(out, 2, key);
    assert.deepEqual(out.subarray(2, 8), b);
    assert.equal(out[1], 0xaa);
    assert.equal(out[8], 0xaa);
  }
});

test('macKeyAt reads at an offset', () => {
  const b = Buffer.from('ffff02005e100001ffff', 'hex');
  assert.equal(macToString(macKeyAt(b, 2)), '02:00:5e:10:00:01');
});

test('macToString prints lower-case colon form from a key or bytes', () => {
  assert.equal(macToString(0), '00:00:00:00:00:00');
  assert.equal(macToString(BROADCAST_MAC_KEY), 'ff:ff:ff:ff:ff:ff');
  assert.equal(macToString(Buffer.from('0A1B2C3D4E5F', 'hex')), '0a:1b:2c:3d:4e:5f');
  assert.equal(macKey(Buffer.from('000000000102', 'hex')), 0x102);
});

test('parseMac accepts colon, dash and bare forms', () => {
  for (const t of ['02:00:5E:10:00:01', '02-00-5e-10-00-01', '02005e100001', ' 02:00:5e:10:00:01 ']) {
    assert.equal(macToString(parseMac(t)), '02:00:5e:10:00:01', t);
  }
});

test('parseMac rejects bad text with a config error naming the key', () => {
  for (const t of ['', '02:00:5e:10:00', '02:00:5e:10:00:01:02', '02:00-5e:10:00:01', 'g2:00:5e:10:00:01', '2:0:5e:10:0:1']) {
    assert.throws(
      () => parseMac(t, 'lan.mac'),
      (e: unknown) => hasCode(e, 'CK_ERR_CONFIG_INVALID') && e.message.includes('lan.mac'),
      t,
    );
  }
});

test('group, broadcast and 802.1D reserved address classes', () => {
  const k = (t: string): number => macKey(parseMac(t));
  assert.equal(isMulticastKey(k('01:00:5e:00:00:01')), true);
  assert.equal(isMulticastKey(k('33:33:00:00:00:01')), true);
  assert.equal(isMulticastKey(BROADCAST_MAC_KEY), true);
  assert.equal(isMulticastKey(k('02:00:5e:10:00:01')), false);
  assert.equal(isMulticastKey(k('fe:ff:ff:ff:ff:ff')), false);
  assert.equal(isBroadcastKey(BROADCAST_MAC_KEY), true);
  assert.equal(isBroadcastKey(k('ff:ff:ff:ff:ff:fe')), false);
  assert.equal(isReservedGroupKey(k('01:80:c2:00:00:00')), true); // STP BPDU
  assert.equal(isReservedGroupKey(k('01:80:c2:00:00:02')), true); // LACP
  assert.equal(isReservedGroupKey(k('01:80:c2:00:00:0e')), true); // LLDP
  assert.equal(isReservedGroupKey(k('01:80:c2:00:00:0f')), true);
  assert.equal(isReservedGroupKey(k('01:80:c2:00:00:10')), false);
  assert.equal(isReservedGroupKey(k('01:80:c1:ff:ff:ff')), false);
});
