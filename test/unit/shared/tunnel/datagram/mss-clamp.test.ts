// SPDX-License-Identifier: UNLICENSED
// The MSS clamp on SYN and SYN-ACK frames, IPv4 and IPv6, with and without VLAN tags: the option is
// lowered, the TCP checksum stays valid (recomputed from scratch), and other frames are left byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clampMss, mssFor } from '../../../../../src/shared/tunnel/datagram/mss-clamp.js';

function csum(parts: Buffer[]): number {
  let s = 0;
  for (const b of parts) for (let i = 0; i < b.length; i += 2) s += ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function synFrame(v6: boolean, vlan: boolean, flags: number, options: Buffer): Buffer {
  const tcp = Buffer.alloc(20 + options.length);
  tcp.writeUInt16BE(40000, 0);
  tcp.writeUInt16BE(443, 2);
  tcp.writeUInt32BE(12345, 4);
  tcp[12] = ((20 + options.length) / 4) << 4;
  tcp[13] = flags;
  tcp.writeUInt16BE(64240, 14);
  options.copy(tcp, 20);
  let ip: Buffer;
  let pseudo: Buffer;
  if (v6) {
    ip = Buffer.alloc(40);
    ip[0] = 0x60;
    ip.writeUInt16BE(tcp.length, 4);
    ip[6] = 6;
    ip[7] = 64;
    ip.fill(0xfd, 8, 40);
    pseudo = Buffer.concat([ip.subarray(8, 40), Buffer.from([0, 0, tcp.length >> 8, tcp.length & 255, 0, 0, 0, 6])]);
  } else {
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + tcp.length, 2);
    ip[8] = 64;
    ip[9] = 6;
    Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(ip, 12);
    pseudo = Buffer.concat([ip.subarray(12, 20), Buffer.from([0, 6, tcp.length >> 8, tcp.length & 255])]);
  }
  tcp.writeUInt16BE(csum([pseudo, tcp]), 16);
  const eth = Buffer.alloc(vlan ? 18 : 14);
  if (vlan) {
    eth.writeUInt16BE(0x8100, 12);
    eth.writeUInt16BE(100, 14);
  }
  eth.writeUInt16BE(v6 ? 0x86dd : 0x0800, vlan ? 16 : 12);
  return Buffer.concat([eth, ip, tcp]);
}

function tcpValid(frame: Buffer, v6: boolean, vlan: boolean): boolean {
  const ip = vlan ? 18 : 14;
  const tcp = frame.subarray(ip + (v6 ? 40 : 20));
  const pseudo = v6
    ? Buffer.concat([frame.subarray(ip + 8, ip + 40), Buffer.from([0, 0, tcp.length >> 8, tcp.length & 255, 0, 0, 0, 6])])
    : Buffer.concat([frame.subarray(ip + 12, ip + 20), Buffer.from([0, 6, tcp.length >> 8, tcp.length & 255])]);
  return csum([pseudo, tcp]) === 0;
}

const mssOpt = (v: number, pad = 0): Buffer =>
  Buffer.concat([Buffer.alloc(pad, 1), Buffer.from([2, 4, v >> 8, v & 255]), Buffer.alloc((4 - ((pad + 4) % 4)) % 4, 1)]);

test('the MSS for each path matches the design table', () => {
  assert.equal(mssFor(1500, false, 0, false), 1389);
  assert.equal(mssFor(1492, false, 0, false), 1381);
  assert.equal(mssFor(1280, false, 0, false), 1169);
  assert.equal(mssFor(1500, false, 0, true), 1369);
  assert.equal(mssFor(1280, true, 0, true), 1129);
});

for (const v6 of [false, true])
  for (const vlan of [false, true])
    for (const flags of [0x02, 0x12])
      for (const pad of [0, 1, 3]) {
        test(`clamps ${v6 ? 'IPv6' : 'IPv4'}${vlan ? ' VLAN' : ''} ${flags === 0x12 ? 'SYN-ACK' : 'SYN'}, option after ${pad} NOPs`, () => {
          const f = synFrame(v6, vlan, flags, mssOpt(1460, pad));
          assert.ok(tcpValid(f, v6, vlan));
          assert.equal(clampMss(f, 1389, 1369), 'clamped');
          const optAt = (vlan ? 18 : 14) + (v6 ? 40 : 20) + 20 + pad + 2;
          assert.equal(f.readUInt16BE(optAt), v6 ? 1369 : 1389);
          assert.ok(tcpValid(f, v6, vlan), 'checksum still valid');
        });
      }

test('a smaller MSS, a non-SYN, a SYN without the option and a fragment are left byte for byte', () => {
  const cases: [Buffer, string][] = [
    [synFrame(false, false, 0x02, mssOpt(1200)), 'fits'],
    [synFrame(false, false, 0x10, mssOpt(1460)), 'not-syn'],
    [synFrame(false, false, 0x02, Buffer.from([1, 1, 1, 1])), 'no-option'],
  ];
  const frag = synFrame(false, false, 0x02, mssOpt(1460));
  frag.writeUInt16BE(0x2000, 14 + 6);
  cases.push([frag, 'skipped']);
  for (const [f, want] of cases) {
    const before = Buffer.from(f);
    assert.equal(clampMss(f, 1389, 1369), want);
    assert.deepEqual(f, before);
  }
});

test('truncated and random frames never throw', () => {
  const f = synFrame(true, true, 0x02, mssOpt(1460, 1));
  for (let n = 0; n <= f.length; n++) clampMss(Buffer.from(f.subarray(0, n)), 1389, 1369);
  for (let i = 0; i < 5000; i++) clampMss(Buffer.from(Array.from({ length: i % 120 }, (_, j) => (i * 31 + j * 17) & 255)), 1389, 1369);
});
