// SPDX-License-Identifier: UNLICENSED
// The agent's data path with super-frames (a TAP with virtio_net_hdrs, a v2 session with `offload`): one
// policy decision per super-frame, sent whole as OFFLOAD or cut into frames when the session does not take
// them, in order with the frames around it; partial checksums completed on the batched path; TAP offloads
// follow the session; OFFLOAD records from the tunnel written whole, a bad header counted and dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Forwarder } from '../../../../src/agent/core/forwarder.js';
import { L2Policy } from '../../../../src/agent/core/l2/policy.js';
import { DEFAULT_POLICY_CONFIG } from '../../../../src/agent/core/l2/policy-config.js';
import type { FrameDevice, TunnelLink, TunnelState } from '../../../../src/agent/core/ports.js';
import {
  GSO_NONE,
  GSO_TCPV4,
  VNET_F_NEEDS_CSUM,
  parseOffload,
  segmentOffload,
  writeVnetHdr,
  type Offload,
} from '../../../../src/shared/l2/tso-segment.js';

/** Ethernet/IPv4/TCP host -> VM with `payload` bytes; its TCP checksum field holds `csum`. */
function tcpFrame(payload: number, tag: number): Buffer {
  const f = Buffer.alloc(54 + payload, tag);
  f.writeUIntBE(0x020000001005, 0, 6);
  f.writeUIntBE(0x020000001020, 6, 6);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.fill(0, 15, 54);
  f.writeUInt16BE(40 + payload, 16);
  f[22] = 64;
  f[23] = 6;
  f.writeUInt32BE(0xc0a80a14, 26);
  f.writeUInt32BE(0xc0a80a05, 30);
  f.writeUInt16BE(40000, 34);
  f.writeUInt16BE(5201, 36);
  f[46] = 0x50;
  f[47] = 0x18;
  return f;
}

const hdr = (gsoType: number, flags: number, gsoSize = 0): Buffer => {
  const h = Buffer.alloc(10);
  writeVnetHdr(h, 0, { flags, gsoType, hdrLen: 54, gsoSize, csumStart: 34, csumOffset: 16 });
  return h;
};
const PLAIN = Buffer.alloc(10);

function setup(offloadUp: boolean, options?: { lanCoalesce: boolean }) {
  const log: string[] = [];
  let tapHandler: ((f: readonly Buffer[], h?: readonly Buffer[]) => void) | undefined;
  let offloadHandler: ((h: Buffer, f: Buffer) => void) | undefined;
  let frameHandler: ((f: readonly Buffer[]) => void) | undefined;
  const states: ((s: TunnelState, i: object) => void)[] = [];
  let state: TunnelState = 'up';
  const tapOffload: boolean[] = [];
  const tap: FrameDevice = {
    maxBatch: 64,
    onFrames: (h) => void (tapHandler = h),
    writeFrames: (fs) => {
      for (const f of fs) log.push(`lan:${f.length}`);
      return fs.length;
    },
    offload: {
      set: (on) => void tapOffload.push(on),
      write: (h, f) => log.push(`lan-offload:${h[1]}:${f.length}`) > 0,
    },
    close: async () => {},
  };
  const tunnel: TunnelLink = {
    get state() {
      return state;
    },
    start: () => {},
    sendFrames: (fs) => {
      for (const f of fs) log.push(`tunnel:${f.length}:${f.readUInt16BE(50).toString(16)}`);
      return fs.length;
    },
    sendOffload: (_h, f) => log.push(`tunnel-offload:${f.length}`) > 0,
    offloadUp: () => offloadUp && state === 'up',
    onOffload: (h) => void (offloadHandler = h),
    onFrames: (h) => void (frameHandler = h),
    onStateChange: (h) => void states.push(h),
    status: () => ({}),
    peerCapabilities: () => [],
    close: async () => {},
  };
  const fwd = new Forwarder(tap, tunnel, new L2Policy(DEFAULT_POLICY_CONFIG, {}, 0), { now: () => 1_000 }, options);
  fwd.start();
  return {
    fwd,
    log,
    tapOffload,
    fromTap: (frames: Buffer[], hdrs: Buffer[]) => tapHandler?.(frames, hdrs),
    fromTunnel: (h: Buffer, f: Buffer) => offloadHandler?.(h, f),
    fromTunnelFrames: (fs: Buffer[]) => frameHandler?.(fs),
    setState: (s: TunnelState) => {
      state = s;
      for (const h of states) h(s, {});
    },
  };
}

test('super-frames leave whole as OFFLOAD in order with the frames around them; partial checksums are completed in the batch', () => {
  const x = setup(true);
  const small = tcpFrame(100, 1);
  x.fromTap(
    [tcpFrame(10, 2), small, tcpFrame(14_480, 3), tcpFrame(20, 4)],
    [PLAIN, hdr(GSO_NONE, VNET_F_NEEDS_CSUM), hdr(GSO_TCPV4, 1, 1448), PLAIN],
  );
  assert.equal(x.log.length, 4);
  assert.match(x.log[0]!, /^tunnel:64:/);
  assert.match(x.log[1]!, /^tunnel:154:/);
  assert.notEqual(x.log[1], 'tunnel:154:0', 'the partial checksum was completed');
  assert.equal(x.log[2], `tunnel-offload:${54 + 14_480}`);
  assert.match(x.log[3]!, /^tunnel:74:/);
  assert.equal(x.fwd.counters.offloadWhole, 1);
});

test('without offload on the session a super-frame read from the TAP is cut into frames; TAP offloads follow the session', () => {
  const x = setup(false);
  x.fromTap([tcpFrame(14_480, 3)], [hdr(GSO_TCPV4, 1, 1448)]);
  assert.equal(x.log.length, 10);
  assert.ok(x.log.every((l) => l.startsWith('tunnel:1502:')));
  assert.equal(x.fwd.counters.offloadSegmented, 1);
  x.setState('backoff');
  assert.deepEqual(x.tapOffload, [false]);
});

test('OFFLOAD records from the tunnel are written whole to the TAP; a malformed header is counted and dropped', () => {
  const x = setup(true);
  const f = tcpFrame(14_480, 5);
  f.writeUIntBE(0x020000001020, 0, 6);
  f.writeUIntBE(0x020000001005, 6, 6);
  x.fromTunnel(hdr(GSO_TCPV4, 1, 1448), f);
  assert.deepEqual(x.log, [`lan-offload:${GSO_TCPV4}:${f.length}`]);
  x.fromTunnel(hdr(3, 1, 1448), f);
  x.fromTunnel(hdr(GSO_TCPV4, 1, 0), f);
  assert.deepEqual(x.fwd.counters.offloadDrops, { 'offload-gso-type': 1, 'offload-header': 1 });
  assert.equal(x.log.length, 1);
});

/** The segments of a 14,480-byte VM -> LAN host transfer, as the headend sends them: full checksums. */
function segmentsToLan(): Buffer[] {
  const f = tcpFrame(14_480, 3);
  const swap = (a: number, b: number, n: number): void => {
    const t = Buffer.from(f.subarray(a, a + n));
    f.copy(f, a, b, b + n);
    t.copy(f, b);
  };
  swap(0, 6, 6);
  swap(26, 30, 4);
  f[47] = 0x10;
  const o = parseOffload(hdr(GSO_TCPV4, VNET_F_NEEDS_CSUM, 1448), f) as Offload;
  const out: Buffer[] = [];
  segmentOffload(o, f, out);
  return out;
}

test('TCP segments from the tunnel reach the TAP as one super-frame, or one by one with lan_coalesce off', () => {
  for (const lanCoalesce of [true, false]) {
    const x = setup(true, { lanCoalesce });
    x.fromTap([tcpFrame(10, 2)], [PLAIN]); // the LAN host's MAC and address learned on the LAN
    x.log.length = 0;
    x.fromTunnelFrames(segmentsToLan());
    if (lanCoalesce) {
      assert.deepEqual(x.log, [`lan-offload:${GSO_TCPV4}:${54 + 14_480}`]);
      assert.deepEqual(x.fwd.counters.lanCoalesce, { superFrames: 1, segments: 10, badChecksum: 0 });
    } else {
      assert.equal(x.log.length, 10);
      assert.ok(x.log.every((l) => l === 'lan:1502'));
      assert.equal(x.fwd.counters.lanCoalesce.superFrames, 0);
    }
    assert.equal(x.fwd.counters.toLanFrames, 10, 'counted as the frames it carries');
  }
});
