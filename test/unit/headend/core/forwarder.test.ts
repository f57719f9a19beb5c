// SPDX-License-Identifier: UNLICENSED
// The headend switch without sockets: learning, flooding, split horizon, per-segment isolation, aging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Forwarder, type SegmentInfo } from '../../../../src/headend/core/forwarder.js';
import { encodeEthernet } from '../../../../src/shared/l2/ethernet.js';

const mac = (n: number): number => 0x0200_0000_0000 + n;
const BCAST = 0xffff_ffff_ffff;
const f = (src: number, dst: number): Buffer => encodeEthernet({ src, dst, etherType: 0x0800, payload: Buffer.alloc(46) });

function rig(segments: SegmentInfo[]) {
  let now = 0;
  const out: string[] = [];
  const fw = new Forwarder(
    {
      send: (a, vni) => {
        out.push(`v:${a}/${vni}`);
      },
    },
    { ageMs: 1_000, maxEntries: 3 },
    () => now,
  );
  fw.setSegments(segments);
  // Each attached session is a port that records what it was sent; 'congested' refuses everything.
  const attach = (vni: number, id: string): boolean =>
    fw.attach(vni, id, {
      send: () => {
        out.push(`s:${id}`);
        return id !== 'congested';
      },
    });
  return { fw, out, attach, take: () => out.splice(0).sort(), tick: (ms: number) => (now += ms) };
}

const A: SegmentInfo = { vni: 100, name: 'a/lan', vteps: ['10.0.0.1', '10.0.0.2'], multiSite: false };
const B: SegmentInfo = { vni: 200, name: 'b/lan', vteps: ['10.0.1.1'], multiSite: true };

test('BUM from a tunnel goes to every VTEP of its segment only; split horizon blocks other tunnels', () => {
  const r = rig([A, B]);
  r.attach(100, 's1');
  r.attach(100, 's2');
  r.attach(200, 's3');
  r.fw.fromSession(100, 's1', f(mac(1), BCAST));
  assert.deepEqual(r.take(), ['v:10.0.0.1/100', 'v:10.0.0.2/100']);
  assert.equal(r.fw.drops['split-horizon'], 0);
});

test('multiSite floods to the other tunnels of the segment, never back to the sender', () => {
  const r = rig([B]);
  r.attach(200, 's1');
  r.attach(200, 's2');
  r.fw.fromSession(200, 's1', f(mac(1), BCAST));
  assert.deepEqual(r.take(), ['s:s2', 'v:10.0.1.1/200']);
});

test('learned unicast goes only where the MAC lives; VTEP-to-VTEP is not our job', () => {
  const r = rig([A]);
  r.attach(100, 's1');
  r.fw.fromVtep('10.0.0.2', 100, f(mac(5), BCAST));
  assert.deepEqual(r.take(), ['s:s1']);
  r.fw.fromSession(100, 's1', f(mac(1), mac(5)));
  assert.deepEqual(r.take(), ['v:10.0.0.2/100']);
  r.fw.fromVtep('10.0.0.1', 100, f(mac(6), mac(5)));
  assert.deepEqual(r.take(), []);
  assert.equal(r.fw.drops['split-horizon'], 1);
  r.fw.fromVtep('10.0.0.1', 100, f(mac(6), mac(1)));
  assert.deepEqual(r.take(), ['s:s1']);
});

test('identical MACs in two segments are separate entries', () => {
  const r = rig([A, B]);
  r.attach(100, 'a1');
  r.attach(200, 'b1');
  r.fw.fromSession(100, 'a1', f(mac(1), BCAST));
  r.fw.fromSession(200, 'b1', f(mac(1), BCAST));
  r.take();
  r.fw.fromVtep('10.0.0.1', 100, f(mac(9), mac(1)));
  assert.deepEqual(r.take(), ['s:a1']);
  r.fw.fromVtep('10.0.1.1', 200, f(mac(9), mac(1)));
  assert.deepEqual(r.take(), ['s:b1']);
});

test('unknown VNI, foreign VTEP, bad frames and congestion are counted drops', () => {
  const r = rig([A]);
  r.attach(100, 'congested');
  r.fw.fromVtep('10.0.0.1', 999, f(mac(1), BCAST));
  r.fw.fromVtep('10.9.9.9', 100, f(mac(1), BCAST));
  r.fw.fromVtep('10.0.0.1', 100, Buffer.alloc(10));
  r.fw.fromVtep('10.0.0.1', 100, f(mac(1), BCAST));
  assert.equal(r.fw.drops['unknown-vni'], 1);
  assert.equal(r.fw.drops['vtep-not-in-segment'], 1);
  assert.equal(r.fw.drops['eth-short'], 1);
  assert.equal(r.fw.drops['session-congested'], 1);
});

test('entries age out and a closed session forgets its MACs', () => {
  const r = rig([A]);
  r.attach(100, 's1');
  r.fw.fromSession(100, 's1', f(mac(1), BCAST));
  r.take();
  r.fw.fromVtep('10.0.0.1', 100, f(mac(5), mac(1)));
  assert.deepEqual(r.take(), ['s:s1']);
  r.tick(1_000);
  r.fw.fromVtep('10.0.0.1', 100, f(mac(5), mac(1)));
  assert.deepEqual(r.take(), ['s:s1']); // flooded to all sessions: same place, but by flooding
  r.attach(100, 's2');
  r.fw.fromSession(100, 's2', f(mac(2), BCAST));
  r.fw.detach(100, 's2');
  r.take();
  r.fw.fromVtep('10.0.0.1', 100, f(mac(5), mac(2)));
  assert.deepEqual(r.take(), ['s:s1']);
});

test('the EVPN hook hears a session MAC when it appears or moves, not on every frame; VTEP MACs are not published', () => {
  const r = rig([A]);
  const heard: string[] = [];
  r.fw.onSessionMac = (vni, m) => heard.push(`${vni}:${m - mac(0)}`);
  r.attach(100, 's1');
  r.attach(100, 's2');
  r.fw.fromSession(100, 's1', f(mac(1), BCAST));
  r.fw.fromSession(100, 's1', f(mac(1), BCAST));
  r.fw.fromVtep('10.0.0.1', 100, f(mac(5), BCAST));
  r.fw.fromSession(100, 's2', f(mac(1), BCAST)); // the host moved to another site's session
  assert.deepEqual(heard, ['100:1', '100:1']);
  assert.deepEqual([...r.fw.sessionMacs()], [{ vni: 100, macs: [mac(1)] }]);
  const gone: number[] = [];
  r.fw.onSessionGone = (vni) => gone.push(vni);
  r.fw.detach(100, 's2');
  assert.deepEqual([...r.fw.sessionMacs()], [{ vni: 100, macs: [] }], 'a closed session leaves nothing to advertise');
  assert.deepEqual(gone, [100]);
});
