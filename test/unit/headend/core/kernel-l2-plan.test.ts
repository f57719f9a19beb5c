// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkPrefix,
  kernelSegments,
  leftoverPorts,
  planPort,
  planPortRemoval,
  planSegments,
  portName,
  removalGroup,
} from '../../../../src/headend/core/kernel-l2-plan.js';
import type { SegmentInfo } from '../../../../src/headend/core/forwarder.js';

const o = { prefix: 'ck', localAddress: '10.98.0.1', port: 4789, ageMs: 300_000 };
const seg = (vni: number, vteps: string[], multiSite = false): SegmentInfo => ({ vni, name: `t/${vni}`, vteps, multiSite });

test('a new segment: bridge and vxlan device, no IPv6 address, one BUM entry per VTEP', () => {
  const p = planSegments(o, new Map(), [seg(100, ['10.98.0.2', '10.98.0.3'])]);
  assert.deepEqual(p.ip, [
    'link add ckb100 type bridge ageing_time 30000 mcast_snooping 0',
    'link set dev ckb100 addrgenmode none',
    'link add ckx100 type vxlan id 100 dstport 4789 local 10.98.0.1',
    'link set dev ckx100 addrgenmode none',
    'link set dev ckx100 master ckb100',
    'link set dev ckx100 up',
    'link set dev ckb100 up',
  ]);
  assert.deepEqual(p.bridge, [
    'fdb append 00:00:00:00:00:00 dev ckx100 dst 10.98.0.2',
    'fdb append 00:00:00:00:00:00 dev ckx100 dst 10.98.0.3',
  ]);
  // An unspecified local address is the kernel's to choose.
  assert.match(planSegments({ ...o, localAddress: '0.0.0.0' }, new Map(), [seg(7, [])]).ip[2] ?? '', /dstport 4789$/);
});

test('a reload: VTEPs added and removed, segments gone deleted, unchanged ones untouched', () => {
  const before = new Map([
    [100, seg(100, ['10.98.0.2', '10.98.0.3'])],
    [200, seg(200, ['10.98.0.9'])],
    [300, seg(300, [])],
  ]);
  const p = planSegments(o, before, [seg(100, ['10.98.0.3', '10.98.0.4']), seg(300, [])]);
  assert.deepEqual(p.ip, ['link del dev ckx200', 'link del dev ckb200']);
  assert.deepEqual(p.bridge, [
    'fdb append 00:00:00:00:00:00 dev ckx100 dst 10.98.0.4',
    'fdb del 00:00:00:00:00:00 dev ckx100 dst 10.98.0.2',
  ]);
  assert.deepEqual(planSegments(o, before, [...before.values()]), { ip: [], bridge: [] });
});

test('a session port: a persistent TAP, isolated (split horizon) unless the segment is multi-site', () => {
  assert.deepEqual(planPort('ck', 'ck1t0', seg(100, [])), [
    'tuntap add dev ck1t0 mode tap',
    'link set dev ck1t0 addrgenmode none',
    'link set dev ck1t0 master ckb100',
    'link set dev ck1t0 type bridge_slave isolated on learning on',
    'link set dev ck1t0 up',
  ]);
  assert.match(planPort('ck', 'ck1t0', seg(100, [], true))[3] ?? '', /isolated off/);
});

test("ended sessions' ports go in one request through the process's own device group", () => {
  const g = removalGroup('ck', 1);
  assert.deepEqual(planPortRemoval(['ck1t0', 'ck1t5'], g), [
    `link set dev ck1t0 down group ${g}`,
    `link set dev ck1t5 down group ${g}`,
    `link delete group ${g}`,
  ]);
  assert.deepEqual(planPortRemoval([], g), [], 'never "link delete group" with nothing in it');
  // Distinct per worker and per headend prefix, and never the default group 0.
  const groups = new Set(['ck', 'dr', 'ck2'].flatMap((p) => [0, 1, 2, 63].map((w) => removalGroup(p, w))));
  assert.equal(groups.size, 12);
  assert.ok(![...groups].includes(0));
});

test("ports left by a run that ended without removing them: all of the prefix, or one worker's", () => {
  const links = [
    { ifname: 'ck1t0', linkinfo: { info_kind: 'tun' } },
    { ifname: 'ck2t1a', linkinfo: { info_kind: 'tun' } },
    { ifname: 'ck1t3', linkinfo: { info_kind: 'veth' } }, // not a TAP
    { ifname: 'ckb100', linkinfo: { info_kind: 'bridge' } },
    { ifname: 'zz1t0', linkinfo: { info_kind: 'tun' } }, // another headend
  ];
  assert.deepEqual(leftoverPorts('ck', links), ['ck1t0', 'ck2t1a']);
  assert.deepEqual(leftoverPorts('ck', links, 2), ['ck2t1a']);
});

test('names fit the kernel limit of 15 bytes; a prefix that would not is refused', () => {
  assert.equal(portName('abcd', 63, 36 ** 8 - 1), 'abcd1rtzzzzzzzz');
  assert.ok(portName('abcd', 63, 36 ** 8 - 1).length <= 15);
  assert.equal(checkPrefix('ck'), null);
  for (const bad of ['', 'CK', 'abcde', '1ck', 'c-k']) assert.notEqual(checkPrefix(bad), null, bad);
});

test('what the kernel holds after a restart: complete segments of our prefix with their VTEPs', () => {
  const links = [
    { ifname: 'ckb100', linkinfo: { info_kind: 'bridge' } },
    { ifname: 'ckx100', linkinfo: { info_kind: 'vxlan' } },
    { ifname: 'ckx200', linkinfo: { info_kind: 'vxlan' } }, // its bridge is missing: created again
    { ifname: 'zzb300', linkinfo: { info_kind: 'bridge' } },
    { ifname: 'zzx300', linkinfo: { info_kind: 'vxlan' } }, // another headend's prefix
    { ifname: 'ckb400', linkinfo: { info_kind: 'bridge' } },
    { ifname: 'ckx400', linkinfo: { info_kind: 'dummy' } }, // not a vxlan device
  ];
  const fdb = [
    { mac: '00:00:00:00:00:00', ifname: 'ckx100', dst: '10.98.0.2' },
    { mac: '00:00:00:00:00:00', ifname: 'ckx100', dst: '10.98.0.3' },
    { mac: '02:00:00:00:00:01', ifname: 'ckx100', dst: '10.98.0.7' }, // learned, not a BUM entry
  ];
  const k = kernelSegments('ck', links, fdb);
  assert.deepEqual([...k.keys()], [100]);
  assert.deepEqual(k.get(100)?.vteps, ['10.98.0.2', '10.98.0.3']);
  assert.equal(kernelSegments('ck', 'not json', null).size, 0);
});
