// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeFactoryBlock,
  encodeFactoryBlock,
  FACTORY_BLOCK_OFFSET,
  FACTORY_HEADER_LEN,
  FACTORY_MAX_PAYLOAD,
  FACTORY_REGION_SIZE,
  type FactoryData,
} from '../../../../src/shared/factory-block/factory-block.js';
import { createHash } from 'node:crypto';
import { prng } from '../../../helpers/prng.js';

const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const DATA: FactoryData = {
  serial: 'R3S-0001',
  hwRev: '1.1',
  macs: ['aa:bb:cc:00:00:01'],
  idevidChainPem: CERT + CERT,
  idevidKeyPem: '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n',
  estUrl: 'https://est.example.net:8443/.well-known/est',
  dcAnchorPem: CERT,
  batch: 'B1',
  station: 'st1',
  createdAt: '2026-11-25T10:00:00.000Z',
};

test('the documented layout: magic, version, header length, payload length, JSON, SHA-256', () => {
  const b = encodeFactoryBlock(DATA);
  assert.equal(b.subarray(0, 4).toString('ascii'), 'CKFB');
  assert.equal(b.readUInt16BE(4), 1);
  assert.equal(b.readUInt16BE(6), FACTORY_HEADER_LEN);
  const len = b.readUInt32BE(8);
  assert.equal(b.readUInt32BE(12), 0);
  assert.deepEqual(JSON.parse(b.subarray(16, 16 + len).toString('utf8')), DATA);
  assert.equal(b.length, 16 + len + 32);
});

test('decode(encode(x)) is x, also with the region padding after it', () => {
  const region = Buffer.alloc(FACTORY_REGION_SIZE);
  encodeFactoryBlock(DATA).copy(region);
  const r = decodeFactoryBlock(region);
  assert.ok(r.ok);
  assert.deepEqual(r.data, DATA);
});

test('every single-byte corruption of the block is detected, and decode never throws', () => {
  const b = encodeFactoryBlock(DATA);
  for (let i = 0; i < b.length; i++) {
    const c = Buffer.from(b);
    c[i] = (c[i] ?? 0) ^ 0x01;
    const r = decodeFactoryBlock(c);
    assert.equal(r.ok, false, `flip at byte ${i} went unnoticed`);
  }
});

test('random garbage and truncations decode to a reason, never an exception', () => {
  const rnd = prng(42);
  const b = encodeFactoryBlock(DATA);
  for (let i = 0; i < 2000; i++) {
    const cut = b.subarray(0, Math.floor(rnd() * b.length));
    assert.equal(decodeFactoryBlock(cut).ok, false);
    const junk = Buffer.from(Array.from({ length: 64 }, () => Math.floor(rnd() * 256)));
    assert.equal(decodeFactoryBlock(junk).ok, false);
  }
});

test('a blank region says "empty"; foreign data says "no-magic"', () => {
  const empty = decodeFactoryBlock(Buffer.alloc(4096));
  assert.ok(!empty.ok && empty.reason === 'empty');
  const foreign = decodeFactoryBlock(Buffer.alloc(4096, 0xa5));
  assert.ok(!foreign.ok && foreign.reason === 'no-magic');
});

test('a block with a valid checksum but bad fields is rejected as bad-payload', () => {
  const b = encodeFactoryBlock(DATA);
  const payload = Buffer.from(JSON.stringify({ ...DATA, estUrl: 'http://plain.example' }));
  const head = Buffer.from(b.subarray(0, 16));
  head.writeUInt32BE(payload.length, 8);
  const body = Buffer.concat([head, payload]);
  const r = decodeFactoryBlock(Buffer.concat([body, createHash('sha256').update(body).digest()]));
  assert.ok(!r.ok && r.reason === 'bad-payload');
  assert.match(r.detail, /https/);
});

test('encoding refuses invalid data and oversize payloads', () => {
  assert.throws(() => encodeFactoryBlock({ ...DATA, serial: 'bad serial!' }), /serial/);
  assert.throws(() => encodeFactoryBlock({ ...DATA, station: 'x'.repeat(FACTORY_MAX_PAYLOAD) }), RangeError);
});

test('the offset sits in the rockchip gap: after u-boot.itb (8 MiB) and the legacy trust area (16 MiB), before p1 (32 MiB)', () => {
  assert.ok(FACTORY_BLOCK_OFFSET >= 16 * 1024 * 1024);
  assert.ok(FACTORY_BLOCK_OFFSET + FACTORY_REGION_SIZE <= 32 * 1024 * 1024);
  assert.equal(FACTORY_BLOCK_OFFSET % 512, 0);
});
