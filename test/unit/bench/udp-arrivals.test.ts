// SPDX-License-Identifier: UNLICENSED
// The bench counts a small-frame flood where it reaches the far host (taken by a socket or dropped for a
// full receive buffer), not only what iperf3 read: a tunnel that delivers more than the reader keeps up with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { udpArrivals } from '../../../bench/tunnel/stats.js';

const SNMP = `Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 1000
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 345621 3 646586 12 646580 0 6 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 9 0 0 0 9 0 0 0 0
`;

test('arrivals are the datagrams a socket took plus those a full receive buffer dropped (not UdpLite, not bad checksums)', () => {
  assert.equal(udpArrivals(SNMP), 345_621 + 646_580);
});

test("this host's own /proc/net/snmp parses", () => {
  assert.ok(udpArrivals(readFileSync('/proc/net/snmp', 'utf8')) >= 0);
});

test('a file without Udp rows, or without the counter, says so', () => {
  assert.throws(() => udpArrivals('Ip: a\nIp: 1\n'), /no Udp: rows/);
  assert.throws(() => udpArrivals('Udp: InDatagrams NoPorts\nUdp: 1 2\n'), /no Udp RcvbufErrors/);
});
