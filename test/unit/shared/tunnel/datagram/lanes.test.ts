// SPDX-License-Identifier: UNLICENSED
// The lane words of the hello exchange and the lane each frame takes (shared/tunnel/datagram/lanes.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { laneAsk, laneCount, laneOffer, parseLaneOffer, pickLane } from '../../../../../src/shared/tunnel/datagram/lanes.js';

test('the ask: 2 to 8 lanes in all, nothing for one; an unknown or malformed word means one lane', () => {
  assert.equal(laneAsk(1), null);
  assert.equal(laneAsk(3), 'dg-lanes:3');
  assert.equal(laneAsk(9), null);
  assert.equal(laneCount(['datagram', 'dg-lanes:3']), 3);
  assert.equal(laneCount(['datagram']), 1, 'an agent that does not ask');
  assert.equal(laneCount(['dg-lanes:99']), 8, 'capped');
  assert.equal(laneCount(['dg-lanes:x', 'dg-lanes:3,4']), 1);
});

test('the offer: peer ids round-trip; malformed, out-of-range or repeated ids offer none', () => {
  assert.deepEqual(parseLaneOffer(['datagram:7:443', laneOffer([11, 12, 13])]), [11, 12, 13]);
  assert.deepEqual(parseLaneOffer(['datagram:7:443']), [], 'a headend without lanes');
  assert.deepEqual(parseLaneOffer(['dg-lane-ids:0,5']), []);
  assert.deepEqual(parseLaneOffer(['dg-lane-ids:16777215']), []);
  assert.deepEqual(parseLaneOffer(['dg-lane-ids:5,5']), []);
  assert.deepEqual(parseLaneOffer(['dg-lane-ids:1,2,3,4,5,6,7,8']), [], 'more than 7 further lanes');
  assert.deepEqual(parseLaneOffer(['dg-lane-ids:5,']), []);
});

/** An Ethernet + IPv4 + TCP header with these ports (enough for the flow hash). */
function tcpFrame(sport: number, dport: number, payload = 0): Buffer {
  const f = Buffer.alloc(14 + 20 + 20 + payload);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f[14 + 9] = 6;
  f.set([10, 0, 0, 1], 14 + 12);
  f.set([10, 0, 0, 2], 14 + 16);
  f.writeUInt16BE(sport, 34);
  f.writeUInt16BE(dport, 36);
  return f;
}

test('each flow keeps one lane whatever its frames carry; flows spread over every lane', () => {
  const lanes = ['a', 'b', 'c'];
  const seen = new Map<string, number>();
  for (let port = 1000; port < 1300; port++) {
    const lane = pickLane(tcpFrame(port, 443), lanes);
    assert.ok(lane !== undefined);
    for (const size of [0, 100, 1400]) assert.equal(pickLane(tcpFrame(port, 443, size), lanes), lane, `flow ${port}, payload ${size}`);
    seen.set(lane, (seen.get(lane) ?? 0) + 1);
  }
  assert.deepEqual([...seen.keys()].sort(), lanes);
  for (const [lane, n] of seen) assert.ok(n > 60, `lane ${lane} took ${n} of 300 flows`);
  assert.equal(pickLane(tcpFrame(1, 2), []), undefined, 'no lanes: the first peer id');
});
