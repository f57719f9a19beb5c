// SPDX-License-Identifier: UNLICENSED
// Fuzz target for the forwarding policy: random and mutated frames in both directions, with simulated
// time and periodic housekeeping. Asserts that nothing throws, every decision is well formed (every drop
// has a known reason, every reply is a parseable frame), the counters add up, and every table and the
// alarm set stay within their bounds. Seeded: a failure prints the seed and frame to replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { L2Policy, type FrameSide } from '../../src/agent/core/l2/policy.js';
import { policyConfig, type PolicyConfig } from '../../src/agent/core/l2/policy-config.js';
import { POLICY_DROPS, totalDrops, type PolicyDropReason } from '../../src/agent/core/l2/counters.js';
import { ARP_OP_REPLY, ARP_OP_REQUEST, encodeArp, encodeGratuitousArp } from '../../src/agent/core/l2/arp.js';
import { encodeEthernet, ETHERTYPE_IPV4, newEthernetView, parseEthernet } from '../../src/shared/l2/ethernet.js';
import { encodeIpv4Udp } from '../../src/agent/core/l2/ipv4.js';
import { encodeNa, encodeNs, IPV6_UNSPECIFIED } from '../../src/agent/core/l2/nd.js';
import { BPDU_MAC_KEY, BROADCAST_MAC_KEY, writeMacKey } from '../../src/shared/l2/mac.js';
import { AlarmSet } from '../../src/agent/core/l2/alarms.js';
import { MacTable } from '../../src/shared/l2/mac-table.js';
import { NeighbourTable } from '../../src/agent/core/l2/neighbour-table.js';
import { Reoriginator } from '../../src/agent/core/l2/reoriginate.js';
import { prng as rng } from '../helpers/prng.js';

const FRAMES = Number(process.env['CK_FUZZ_POLICY_FRAMES'] ?? 1_000_000);
const SEED = Number(process.env['CK_FUZZ_SEED'] ?? 20261125);

/** Valid frames of every kind the policy treats specially, over small address pools (so bindings collide). */
function corpus(r: () => number): Buffer[] {
  const mac = (): number => 0x02_00_00_00_00_00 + Math.floor(r() * 64);
  const ip4 = (): number => 0xc0_00_02_00 + Math.floor(r() * 32);
  const ip6 = (): Buffer => {
    const b = Buffer.from('fd000000000000000000000000000000', 'hex');
    b[15] = Math.floor(r() * 32);
    return b;
  };
  const out: Buffer[] = [];
  for (let i = 0; i < 400; i++) {
    out.push(encodeArp({ op: ARP_OP_REQUEST, senderMac: mac(), senderIp: ip4(), targetMac: 0, targetIp: ip4() }));
    out.push(encodeArp({ op: ARP_OP_REPLY, senderMac: mac(), senderIp: ip4(), targetMac: mac(), targetIp: ip4() }));
    out.push(encodeGratuitousArp(mac(), ip4()));
    out.push(encodeArp({ op: ARP_OP_REQUEST, senderMac: mac(), senderIp: 0, targetMac: 0, targetIp: ip4() }));
    out.push(encodeNs({ srcMac: mac(), srcIp: ip6(), targetIp: ip6() }));
    out.push(encodeNs({ srcMac: mac(), srcIp: IPV6_UNSPECIFIED, targetIp: ip6() }));
    const t = ip6();
    out.push(encodeNa({ srcMac: mac(), srcIp: t, targetIp: t, router: r() < 0.2, solicited: false, override: true }));
    out.push(
      encodeNa({ srcMac: mac(), srcIp: t, targetIp: t, dstIp: ip6(), ethDst: mac(), router: false, solicited: true, override: true }),
    );
    const sp = r() < 0.3 ? 67 : 1000;
    const dp = sp === 67 ? 68 : 2000;
    const dst = r() < 0.3 ? BROADCAST_MAC_KEY : r() < 0.5 ? 0x01_00_5e_00_00_fb : mac();
    out.push(
      encodeEthernet({
        dst,
        src: mac(),
        etherType: ETHERTYPE_IPV4,
        payload: encodeIpv4Udp({ src: ip4(), dst: ip4(), srcPort: sp, dstPort: dp, payload: Buffer.alloc(Math.floor(r() * 1400)) }),
        ...(r() < 0.1 ? { vlans: [{ tci: 10 }] } : {}),
      }),
    );
    // Rare, or a BPDU from the tunnel would keep the tunnel blocked for the whole run.
    if (i % 50 === 0)
      out.push(
        encodeEthernet({ dst: r() < 0.5 ? BPDU_MAC_KEY : 0x01_80_c2_00_00_0e, src: mac(), etherType: 0x0026, payload: Buffer.alloc(38) }),
      );
  }
  return out;
}

interface Run {
  frames: number;
  drops: number;
  replies: number;
}

function fuzz(
  seed: number,
  frames: number,
  config: PolicyConfig,
  bounds: { mac: number; neigh: number; alarms: number; pending: number },
): Run {
  const r = rng(seed);
  const base = corpus(r);
  const alarms = new AlarmSet({ maxAlarms: bounds.alarms });
  const p = new L2Policy(config, {
    alarms,
    macs: new MacTable<FrameSide>({
      maxEntries: bounds.mac,
      ageMs: config.macAgeMs,
      moveThreshold: 3,
      moveWindowMs: 10_000,
      freezeMs: 20_000,
      freezeSide: 'lan',
      alarms,
    }),
    neighbours: new NeighbourTable({
      maxEntries: bounds.neigh,
      ageMs: config.neighbourAgeMs,
      splitBrainWindowMs: config.splitBrainWindowMs,
      alarms,
    }),
    reoriginator: new Reoriginator({ maxPending: bounds.pending }),
  });
  const known = new Set<string>(POLICY_DROPS);
  const scratch = Buffer.alloc(2048);
  const eth = newEthernetView();
  let now = 0;
  let nextTick = 1000;
  const run: Run = { frames: 0, drops: 0, replies: 0 };
  for (let i = 0; i < frames; i++) {
    const src = base[Math.floor(r() * base.length)] ?? Buffer.alloc(0);
    let len = src.length;
    src.copy(scratch, 0, 0, len);
    const m = r();
    if (m < 0.35) {
      // unmodified, but from a wide MAC space now and then so the tables fill up
      if (r() < 0.3) writeMacKey(scratch, 6, Math.floor(r() * 0x1_0000_0000) * 0x100 + 0x02);
    } else if (m < 0.75) {
      const flips = 1 + Math.floor(r() * 4);
      for (let k = 0; k < flips; k++) scratch[Math.floor(r() * len)] = Math.floor(r() * 256);
    } else if (m < 0.85) {
      len = Math.floor(r() * len);
    } else if (m < 0.92) {
      const extra = Math.floor(r() * 200);
      for (let k = 0; k < extra; k++) scratch[len + k] = Math.floor(r() * 256);
      len = Math.min(scratch.length, len + extra);
    } else {
      len = Math.floor(r() * 1600);
      for (let k = 0; k < len; k++) scratch[k] = Math.floor(r() * 256);
    }
    const frame = scratch.subarray(0, len);
    const dir: FrameSide = r() < 0.5 ? 'lan' : 'tunnel';
    now += r() < 0.999 ? Math.floor(r() * 3) : Math.floor(r() * 400_000);
    let d;
    try {
      d = p.decide(frame, dir, now);
    } catch (e) {
      assert.fail(`seed ${seed}, frame ${i} (${dir}, now ${now}) threw: ${String(e)}\n${frame.toString('hex')}`);
    }
    run.frames++;
    if (d.action === 'drop') {
      run.drops++;
      if (d.reason === null || !known.has(d.reason))
        assert.fail(`seed ${seed}, frame ${i}: drop without a known reason (${String(d.reason)})`);
    } else if (d.reason !== null) {
      assert.fail(`seed ${seed}, frame ${i}: ${d.action} with a reason ${d.reason}`);
    }
    if (d.action === 'reply') {
      run.replies++;
      if (d.replies.length === 0) assert.fail(`seed ${seed}, frame ${i}: reply without frames`);
      for (const f of d.replies) if (parseEthernet(f, eth) !== null) assert.fail(`seed ${seed}, frame ${i}: unparseable reply`);
    } else if (d.replies.length !== 0) {
      assert.fail(`seed ${seed}, frame ${i}: replies on a ${d.action} decision`);
    }
    if (dir === 'lan' && d.action === 'lan') assert.fail(`seed ${seed}, frame ${i}: a LAN frame sent back to the LAN`);
    if (dir === 'tunnel' && d.action === 'tunnel') assert.fail(`seed ${seed}, frame ${i}: split horizon broken`);
    if (now >= nextTick) {
      p.tick(now);
      p.reoriginator.due(now);
      if (r() < 0.5) p.unblockTunnel(now); // the operator lifting a BPDU block
      nextTick = now + 1000;
    }
    if ((i & 0x3fff) === 0 || i === frames - 1) {
      const ctx = `seed ${seed}, frame ${i}`;
      assert.ok(p.macs.size <= bounds.mac, `${ctx}: MAC table ${p.macs.size} > ${bounds.mac}`);
      assert.ok(p.neighbours.size <= bounds.neigh, `${ctx}: neighbour table ${p.neighbours.size} > ${bounds.neigh}`);
      assert.ok(alarms.size <= bounds.alarms, `${ctx}: ${alarms.size} alarms > ${bounds.alarms}`);
      assert.ok(p.reoriginator.pendingCount <= bounds.pending, `${ctx}: pending re-originations`);
      for (const c of [p.counters.fromLan, p.counters.fromTunnel]) {
        assert.equal(c.forwarded + c.answered + totalDrops(c), c.frames, `${ctx}: every frame has exactly one outcome`);
      }
    }
  }
  const reasons = new Set<PolicyDropReason>();
  for (const c of [p.counters.fromLan, p.counters.fromTunnel]) for (const k of POLICY_DROPS) if (c.drops[k] > 0) reasons.add(k);
  if (process.env['CK_FUZZ_VERBOSE']) console.log(`seed ${seed} drop reasons: ${[...reasons].join(' ')}`);
  assert.ok(reasons.size >= 15, `the fuzz reached only ${reasons.size} drop reasons: ${[...reasons].join(' ')}`);
  return run;
}

test(`policy fuzz: ${FRAMES} random and mutated frames, both directions, bounded state`, () => {
  const started = process.hrtime.bigint();
  const heapBefore = process.memoryUsage().heapUsed;
  const half = Math.ceil(FRAMES / 2);
  const small = fuzz(
    SEED,
    half,
    policyConfig({ macAgeMs: 30_000, neighbourAgeMs: 60_000, bpduBlockMs: 2000, ownMacs: [0x02_00_00_00_00_05], ownIpv4: [0xc0_00_02_05] }),
    {
      mac: 256,
      neigh: 128,
      alarms: 64,
      pending: 16,
    },
  );
  const dflt = fuzz(SEED + 1, FRAMES - half, policyConfig({ vlanMode: 'transparent', bpduBlockMs: 0 }), {
    mac: 4096,
    neigh: 4096,
    alarms: 256,
    pending: 256,
  });
  const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  const total = small.frames + dflt.frames;
  console.log(
    `l2 policy fuzz: ${total} frames (${small.drops + dflt.drops} drops, ${small.replies + dflt.replies} proxy replies) in ${secs.toFixed(1)} s, seeds ${SEED} and ${SEED + 1}, heap growth ${heapGrowthMb.toFixed(0)} MB`,
  );
  assert.equal(total, FRAMES);
  assert.ok(heapGrowthMb < 256, `heap grew by ${heapGrowthMb.toFixed(0)} MB`);
});
