// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../../../../../src/shared/errors.js';
import { checksumAdd, checksumAddWord, checksumFinish } from '../../../../../src/agent/core/l2/checksum.js';
import {
  encodeIpv4Udp,
  IP_PROTO_UDP,
  ipv4ToString,
  newIpv4View,
  parseIpv4,
  parseIpv4Udp,
  UDP_PORT_DHCP_CLIENT,
  UDP_PORT_DHCP_SERVER,
} from '../../../../../src/agent/core/l2/ipv4.js';

const SRC = parseIpv4('192.0.2.1');
const DST = parseIpv4('255.255.255.255');

function udpChecksumOk(p: Buffer): boolean {
  const ihl = (p[0]! & 0x0f) * 4;
  const udpLen = p.readUInt16BE(ihl + 4);
  let s = checksumAdd(p, 12, 8);
  s = checksumAddWord(IP_PROTO_UDP, s);
  s = checksumAddWord(udpLen, s);
  return checksumFinish(checksumAdd(p, ihl, udpLen, s)) === 0;
}

test('a DHCP server->client datagram round-trips with valid header and UDP checksums', () => {
  const payload = Buffer.alloc(300, 7);
  const p = encodeIpv4Udp({ src: SRC, dst: DST, srcPort: UDP_PORT_DHCP_SERVER, dstPort: UDP_PORT_DHCP_CLIENT, payload, ttl: 17 });
  const frame = Buffer.concat([Buffer.alloc(14), p]);
  const v = newIpv4View();
  assert.equal(parseIpv4Udp(frame, 14, v), null);
  assert.equal(v.src, SRC);
  assert.equal(v.dst, DST);
  assert.equal(v.protocol, IP_PROTO_UDP);
  assert.equal(v.ttl, 17);
  assert.equal(v.headerLen, 20);
  assert.equal(v.totalLen, 328);
  assert.equal(v.srcPort, 67);
  assert.equal(v.dstPort, 68);
  assert.equal(v.l4Offset, 34);
  assert.equal(v.fragmentOffset, 0);
  assert.equal(checksumFinish(checksumAdd(p, 0, 20)), 0);
  assert.ok(udpChecksumOk(p));
  assert.deepEqual(frame.subarray(42), payload);
});

test('udpChecksum false writes zero', () => {
  const p = encodeIpv4Udp({ src: SRC, dst: DST, srcPort: 1, dstPort: 4789, payload: Buffer.alloc(8), udpChecksum: false });
  assert.equal(p.readUInt16BE(26), 0);
});

test('header bounds: short, version, IHL, total length, UDP header', () => {
  const good = encodeIpv4Udp({ src: SRC, dst: DST, srcPort: 1, dstPort: 2, payload: Buffer.alloc(4) });
  const v = newIpv4View();
  const mod = (f: (b: Buffer) => void, len = good.length): Buffer => {
    const b = Buffer.from(good.subarray(0, len));
    f(b);
    return b;
  };
  assert.equal(parseIpv4Udp(good.subarray(0, 19), 0, v), 'ipv4-short');
  assert.equal(parseIpv4Udp(good, 20, v), 'ipv4-short');
  assert.equal(
    parseIpv4Udp(
      mod((b) => (b[0] = 0x65)),
      0,
      v,
    ),
    'ipv4-bad-version',
  );
  assert.equal(
    parseIpv4Udp(
      mod((b) => (b[0] = 0x44)),
      0,
      v,
    ),
    'ipv4-bad-header-length',
  );
  assert.equal(
    parseIpv4Udp(
      mod((b) => (b[0] = 0x4f)),
      0,
      v,
    ),
    'ipv4-short',
  ); // 60-byte header in 32 bytes
  assert.equal(
    parseIpv4Udp(
      mod((b) => b.writeUInt16BE(19, 2)),
      0,
      v,
    ),
    'ipv4-bad-total-length',
  );
  assert.equal(
    parseIpv4Udp(
      mod((b) => b.writeUInt16BE(33, 2)),
      0,
      v,
    ),
    'ipv4-short',
  );
  assert.equal(
    parseIpv4Udp(
      mod((b) => b.writeUInt16BE(27, 2)),
      0,
      v,
    ),
    'udp-short',
  );
  // Ethernet padding after the packet is fine.
  assert.equal(parseIpv4Udp(Buffer.concat([good, Buffer.alloc(20)]), 0, v), null);
});

test('non-first fragments and non-UDP packets have no ports', () => {
  const v = newIpv4View();
  const frag = encodeIpv4Udp({ src: SRC, dst: DST, srcPort: 67, dstPort: 68, payload: Buffer.alloc(4) });
  frag.writeUInt16BE(0x2000 | 10, 6);
  assert.equal(parseIpv4Udp(frag, 0, v), null);
  assert.equal(v.fragmentOffset, 80);
  assert.equal(v.moreFragments, true);
  assert.equal(v.srcPort, -1);
  const tcp = encodeIpv4Udp({ src: SRC, dst: DST, srcPort: 67, dstPort: 68, payload: Buffer.alloc(4) });
  tcp[9] = 6;
  assert.equal(parseIpv4Udp(tcp, 0, v), null);
  assert.equal(v.protocol, 6);
  assert.equal(v.dstPort, -1);
});

test('dotted quads convert both ways; bad text is a config error', () => {
  for (const t of ['0.0.0.0', '10.0.0.1', '192.0.2.255', '255.255.255.255']) assert.equal(ipv4ToString(parseIpv4(t)), t);
  assert.equal(parseIpv4('10.1.2.3'), 0x0a010203);
  for (const t of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-4', 'a.b.c.d', '1..2.3']) {
    assert.throws(
      () => parseIpv4(t, 'lan.ip'),
      (e: unknown) => hasCode(e, 'CK_ERR_CONFIG_INVALID'),
      t,
    );
  }
});
