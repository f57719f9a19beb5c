// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ALPN_V1,
  ALPN_V2,
  alpnOffer,
  chooseCapabilities,
  encodeControlV2,
  encodeFrameV2,
  encodeOffloadV2,
  protocolOf,
  RecordDecoderV2,
  V2_MAX_RECORD,
  type V2Drop,
} from '../../../../src/shared/tunnel/records-v2.js';
import { prng, randBytes, randInt, seedFromEnv } from '../../../helpers/prng.js';

type Ev = ['frame', number, string] | ['offload', number, string, string] | ['control', string] | ['drop', V2Drop];

function collect(): { ev: Ev[]; dec: RecordDecoderV2 } {
  const ev: Ev[] = [];
  const dec = new RecordDecoderV2({
    frame: (vni, f) => ev.push(['frame', vni, f.toString('hex')]),
    offload: (vni, h, f) => ev.push(['offload', vni, h.toString('hex'), f.toString('hex')]),
    control: (p) => ev.push(['control', p.toString('hex')]),
    drop: (r) => ev.push(['drop', r]),
  });
  return { ev, dec };
}

test('v2 records round-trip through the decoder whatever the chunking', () => {
  const rand = prng(seedFromEnv('CK_SEED'));
  const frame = randBytes(rand, 60);
  const superFrame = randBytes(rand, 65_000);
  const hdr = randBytes(rand, 10);
  const ctl = randBytes(rand, 40);
  const stream = Buffer.concat([encodeFrameV2(7, frame), encodeOffloadV2(0xabcdef, hdr, superFrame), encodeControlV2(ctl)]);
  const want: Ev[] = [
    ['frame', 7, frame.toString('hex')],
    ['offload', 0xabcdef, hdr.toString('hex'), superFrame.toString('hex')],
    ['control', ctl.toString('hex')],
  ];
  for (let round = 0; round < 50; round++) {
    const { ev, dec } = collect();
    for (let pos = 0; pos < stream.length;) {
      const step = Math.min(stream.length - pos, randInt(rand, 1, 9000));
      assert.equal(dec.push(stream.subarray(pos, pos + step)), null);
      pos += step;
    }
    assert.deepEqual(ev, want);
  }
});

test('bad but delimited records are counted and skipped; the stream stays in sync', () => {
  const { ev, dec } = collect();
  const unknown = Buffer.from([0x09, 0, 0, 3, 1, 2, 3]);
  const shortFrame = Buffer.from([0x01, 0, 0, 2, 8, 0]);
  const longControl = Buffer.concat([Buffer.from([0x03, 0, 0x05, 0x00]), Buffer.alloc(0x500)]);
  const noIFlag = encodeFrameV2(1, Buffer.alloc(14));
  noIFlag[4] = 0;
  const good = encodeFrameV2(2, Buffer.alloc(14, 1));
  assert.equal(dec.push(Buffer.concat([unknown, shortFrame, longControl, noIFlag, good])), null);
  assert.deepEqual(ev, [
    ['drop', 'record-type'],
    ['drop', 'record-undersize'],
    ['drop', 'record-too-long'],
    ['drop', 'record-no-i-flag'],
    ['frame', 2, Buffer.alloc(14, 1).toString('hex')],
  ]);
});

test('a length above the v2 limit poisons the stream', () => {
  const { ev, dec } = collect();
  const len = V2_MAX_RECORD + 1;
  assert.equal(dec.push(Buffer.from([0x01, len >>> 16, (len >>> 8) & 0xff, len & 0xff])), 'record-oversize');
  assert.equal(dec.poisoned, true);
  assert.equal(dec.push(encodeFrameV2(1, Buffer.alloc(14))), 'record-oversize');
  assert.deepEqual(ev, []);
});

test('fuzz: random bytes never throw and every body respects its type limits', () => {
  const rand = prng(seedFromEnv('CK_SEED') + 1);
  for (let round = 0; round < 300; round++) {
    const { ev, dec } = collect();
    const data = randBytes(rand, randInt(rand, 0, 4000));
    // Bias toward plausible headers so the decoder goes past the first length check.
    for (let i = 0; i + 4 < data.length; i += randInt(rand, 4, 400)) {
      data[i] = randInt(rand, 0, 5);
      data[i + 1] = 0;
    }
    for (let pos = 0; pos < data.length && !dec.poisoned;) {
      const step = randInt(rand, 1, 700);
      dec.push(data.subarray(pos, pos + step));
      pos += step;
    }
    for (const e of ev) {
      if (e[0] === 'frame') assert.ok(e[2].length / 2 >= 14 && e[2].length / 2 <= 1522);
      if (e[0] === 'control') assert.ok(e[1].length / 2 >= 4 && e[1].length / 2 <= 1204);
    }
  }
});

test('ALPN and capabilities: v2 preferred, /1 kept, rollback knob, datagram reserved', () => {
  assert.deepEqual(alpnOffer(2), [ALPN_V2, ALPN_V1]);
  assert.deepEqual(alpnOffer(1), [ALPN_V1]);
  assert.equal(protocolOf(ALPN_V2, 2), 2);
  assert.equal(protocolOf(ALPN_V1, 2), 1);
  assert.equal(protocolOf(ALPN_V2, 1), null);
  assert.equal(protocolOf(false, 2), null);
  assert.deepEqual(chooseCapabilities(2, ['l2', 'offload', 'datagram'], ['offload', 'datagram']), ['offload']);
  assert.deepEqual(chooseCapabilities(1, ['offload'], ['offload']), []);
});
