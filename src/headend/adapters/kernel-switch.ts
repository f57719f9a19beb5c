// SPDX-License-Identifier: UNLICENSED
// The kernel L2 engine (config `l2.engine: "kernel"`): each session is a TAP port of its segment's Linux
// bridge, the segment's VXLAN is a kernel vxlan device, and learning, flooding, split horizon (bridge port
// isolation), VXLAN encapsulation and UDP GRO/GSO are the kernel's, on every core. This process keeps
// TLS, admission, policy, audit and metrics; it moves frames between a session's records and its TAP.
// The lines it runs are decided in core/kernel-l2-plan.ts; iproute2 runs them (adapters/ip-batch.ts).
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/errors.js';
import { newEthernetView, parseEthernet } from '../../shared/l2/ethernet.js';
import { OFFLOAD_DROPS, VNET_HDR_LEN, headFrame, parseOffload, toFrames } from '../../shared/l2/tso-segment.js';
import type { NativeTap, TapAddon } from '../../shared/native/addon.js';
import { exec } from '../../shared/exec.js';
import { newSegmentStats, type OffloadStats, type SegmentInfo, type SegmentStats } from '../core/forwarder.js';
import type { L2Switch, SwitchedSession } from '../core/l2-switch.js';
import {
  kernelSegments,
  leftoverPorts,
  planIsolation,
  planPort,
  planPortRemoval,
  planSegments,
  portName,
  removalGroup,
  type KernelL2Options,
} from '../core/kernel-l2-plan.js';
import { openIpBatch, type BatchFailure } from './ip-batch.js';

export const KERNEL_DROPS = [
  'unknown-vni',
  'eth-short',
  'eth-oversize',
  'eth-too-many-tags',
  'eth-bad-length',
  'port-not-ready',
  'port-write',
  ...OFFLOAD_DROPS,
] as const;
type KernelDrop = (typeof KERNEL_DROPS)[number];

/** Frames a port holds while iproute2 joins it to its bridge (a few ms). */
const MAX_PENDING = 256;
/** Frames one wake-up of a port's TAP reads; the buffer is sized for 1518-byte frames, not 64 KB. */
const READ_BATCH = 8;
const READ_ROOM = 1_600;
const FABRIC_IP_MTU = 1_500;

interface Segment {
  info: SegmentInfo;
  stats: SegmentStats;
  ports: Map<string, Port>;
}

interface Port {
  name: string;
  /** Null until iproute2 has created the port and this process opened it. */
  tap: NativeTap | null;
  segment: Segment;
  session: SwitchedSession;
  /** Frames waiting for the port to join its bridge; null once it has. */
  pending: Buffer[] | null;
  out: Buffer[];
  flushing: boolean;
  closed: boolean;
}

export interface KernelSwitch extends L2Switch {
  /** Resolves when every change submitted so far has been applied by the kernel. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export interface KernelSwitchOptions extends KernelL2Options {
  addon: TapAddon;
  log: Logger;
  /** 0 for a headend of one process, 1..N for its workers: part of each TAP's name. */
  worker: number;
  /** Creates, updates and deletes segments' devices; false: only creates the ones it needs (a worker). */
  owner: boolean;
}

/** Reads what the kernel already holds (a restart), then serves; devices are left in place on close. */
export async function openKernelSwitch(o: KernelSwitchOptions): Promise<KernelSwitch> {
  const [links, fdb] = await Promise.all([
    exec('ip', ['-d', '-j', 'link', 'show']),
    exec('bridge', ['-j', 'fdb', 'show']).catch(() => ({ stdout: '[]' })),
  ]);
  const parse = (s: string): unknown => {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      return [];
    }
  };
  const inKernel = kernelSegments(o.prefix, parse(links.stdout), parse(fdb.stdout));
  const group = removalGroup(o.prefix, o.worker);
  // What a previous life of this process (or, for the owner, of any worker) left behind goes first.
  const leftovers = leftoverPorts(o.prefix, parse(links.stdout), o.owner ? undefined : o.worker);
  // Ports to delete, with their descriptors: closed only after their device is gone, when it is free.
  const doomed: { name: string; tap: NativeTap | null }[] = [];
  let removal: NodeJS.Timeout | null = null;
  const ip = openIpBatch('ip');
  const bridgeTool = openIpBatch('bridge');
  const drops = Object.fromEntries(KERNEL_DROPS.map((d) => [d, 0])) as Record<KernelDrop, number>;
  const offloadStats: OffloadStats = { recordsIn: 0, whole: 0, segmentsOut: 0 };
  const segments = new Map<number, Segment>();
  const ports = new Map<string, Port>();
  const view = newEthernetView();
  let counter = 0;
  let work: Promise<unknown> = Promise.resolve();
  const report = (what: string, failures: BatchFailure[]): void => {
    // A device that exists already is the state we asked for (a restart, another worker first).
    const real = failures.filter((f) => !/File exists/.test(f.error));
    for (const f of real.slice(0, 5)) o.log.error(`kernel L2: ${what} failed`, { command: f.line, error: f.error });
    if (real.length > 5) o.log.error(`kernel L2: ${what}: ${real.length - 5} more commands failed`);
  };
  const run = (what: string, lines: string[], bridgeLines: string[] = []): Promise<BatchFailure[]> => {
    const p = work.then(async () => {
      const f = lines.length ? await ip.run(lines) : [];
      const g = bridgeLines.length ? await bridgeTool.run(bridgeLines) : [];
      report(what, [...f, ...g]);
      return [...f, ...g];
    });
    work = p.catch((e: unknown) => o.log.error(`kernel L2: ${what} failed`, { error: errorMessage(e) }));
    return p;
  };

  const removeDoomed = async (): Promise<void> => {
    removal = null;
    if (doomed.length === 0) return;
    const batch = doomed.splice(0);
    await run(
      'port removal',
      planPortRemoval(
        batch.map((d) => d.name),
        group,
      ),
    ).catch(() => undefined);
    for (const d of batch) if (d.tap) o.addon.close(d.tap);
  };
  // Removals are gathered for a moment: a fleet's disconnect becomes a few requests, not thousands.
  const doom = (name: string, tap: NativeTap | null = null): void => {
    doomed.push({ name, tap });
    removal ??= setTimeout(() => void removeDoomed(), 200);
  };
  if (leftovers.length) {
    o.log.info('kernel L2: removing session ports left by an earlier run', { ports: leftovers.length });
    doomed.push(...leftovers.map((name) => ({ name, tap: null })));
    void removeDoomed();
  }

  const flush = (p: Port): void => {
    p.flushing = false;
    if (p.out.length === 0 || p.closed || !p.tap) return;
    const n = o.addon.write(p.tap, p.out);
    if (n < p.out.length) drops['port-write'] += p.out.length - n;
    p.out.length = 0;
  };
  const toPort = (p: Port, frame: Buffer): void => {
    if (p.pending) {
      if (p.pending.length < MAX_PENDING) p.pending.push(Buffer.from(frame));
      else drops['port-not-ready']++;
      return;
    }
    // One write call per port per turn: the session's whole batch of records goes in together.
    p.out.push(frame);
    if (!p.flushing) {
      p.flushing = true;
      queueMicrotask(() => flush(p));
    }
  };
  // TUNSETIFF waits for the kernel's RTNL lock, which iproute2 holds while it creates and deletes
  // thousands of devices: on the loop, every session of the process waited with it.
  const addon = o.addon;
  // With a virtio_net_hdr a v2 agent's TCP super-frame goes into the bridge whole, one write, and the
  // kernel segments it on its way to the VTEP (offloads stay off toward us: reads are plain frames).
  const vnet = addon.writeOffload !== undefined && addon.openAsync !== undefined;
  const openPort = (name: string, cb: (err: Error | undefined, tap: NativeTap | undefined) => void): void => {
    if (addon.openAsync) return addon.openAsync(name, cb, vnet);
    try {
      cb(undefined, addon.open(name, false));
    } catch (e) {
      cb(e as Error, undefined);
    }
  };
  const listen = (p: Port, tap: NativeTap): NativeTap => {
    const batch: Buffer = o.addon.start(
      tap,
      READ_BATCH,
      (count, used, err) => {
        if (p.closed) return;
        if (err) o.log.warn('kernel L2: session port read failed', { port: p.name, error: err.message });
        if (count === 0) return;
        // One copy per wake-up: the session's queue keeps the frames after the buffer is reused.
        const copy = Buffer.from(batch.subarray(0, used));
        const v = tap.vnetHdr === true;
        let off = 0;
        for (let i = 0; i < count && off + 2 <= used; i++) {
          // [u16 len][frame], or [u32 len][virtio_net_hdr][frame]: offloads off, the header says nothing.
          const len = v ? copy.readUInt32LE(off) - VNET_HDR_LEN : copy.readUInt16LE(off);
          const start = off + (v ? 4 + VNET_HDR_LEN : 2);
          const frame = copy.subarray(start, start + len);
          off = start + len;
          if (p.session.send(frame)) {
            p.segment.stats.tunnelOut.frames++;
            p.segment.stats.tunnelOut.bytes += len;
          }
        }
      },
      READ_ROOM,
    );
    return tap;
  };
  const portOf = (vni: number, id: string): Port | undefined => {
    const p = ports.get(id);
    if (p && p.segment.info.vni === vni) return p;
    drops['unknown-vni']++;
    return undefined;
  };

  const updateSegments = (upsert: readonly SegmentInfo[], removed: readonly number[]): void => {
    const isolation: string[] = [];
    const before = new Map<number, SegmentInfo>();
    for (const vni of removed) {
      const had = inKernel.get(vni);
      if (had) before.set(vni, had);
      segments.delete(vni);
      inKernel.delete(vni);
    }
    for (const info of upsert) {
      const old = segments.get(info.vni);
      if (old && old.info.multiSite !== info.multiSite)
        isolation.push(
          ...planIsolation(
            [...old.ports.values()].map((p) => p.name),
            info.multiSite,
          ),
        );
      if (old) old.info = info;
      else segments.set(info.vni, { info, stats: newSegmentStats(), ports: new Map() });
      const had = inKernel.get(info.vni);
      if (had) before.set(info.vni, had);
      inKernel.set(info.vni, info);
    }
    // Planned from the touched segments alone: what they were in the kernel, what they are now.
    const plan = planSegments(o, before, upsert);
    // A worker never removes what the owner may still be serving; it only makes sure its ports have a bridge.
    const keep = (l: string): boolean => o.owner || !/^(link del|fdb del)/.test(l);
    void run('segments', [...plan.ip.filter(keep), ...isolation], plan.bridge.filter(keep));
  };

  return {
    drops,
    offloadStats,
    setSegments(list) {
      const keep = new Set(list.map((s) => s.vni));
      updateSegments(
        list,
        [...inKernel.keys()].filter((vni) => !keep.has(vni)),
      );
    },
    updateSegments,
    attach(vni, sessionId, session) {
      const segment = segments.get(vni);
      if (!segment) return false;
      const name = portName(o.prefix, o.worker, counter++);
      const p: Port = { name, tap: null, segment, session, pending: [], out: [], flushing: false, closed: false };
      ports.set(sessionId, p);
      segment.ports.set(sessionId, p);
      void run('port', planPort(o.prefix, name, segment.info)).then((f) => {
        const waiting = p.pending ?? [];
        p.pending = null;
        if (p.closed) return doom(name);
        if (f.length > 0) {
          drops['port-not-ready'] += waiting.length;
          return session.close('l2-port', 'l2-port');
        }
        openPort(name, (err, tap) => {
          if (err || !tap) {
            o.log.error('kernel L2: cannot open the session port', { port: name, error: errorMessage(err) });
            doom(name);
            return session.close('l2-port', 'l2-port');
          }
          if (p.closed) return doom(name, tap);
          p.tap = listen(p, tap);
          for (const frame of waiting) toPort(p, frame);
        });
      });
      return true;
    },
    detach(vni, sessionId) {
      const p = ports.get(sessionId);
      if (!p || p.segment.info.vni !== vni) return;
      ports.delete(sessionId);
      p.segment.ports.delete(sessionId);
      p.closed = true;
      // The device goes with the next removal batch (the kernel forgets its MACs with it), then its
      // descriptor. A port still being created is removed once it exists.
      if (p.tap) doom(p.name, p.tap);
    },
    fromSession(vni, sessionId, frame) {
      const p = portOf(vni, sessionId);
      if (!p) return;
      const bad = parseEthernet(frame, view);
      if (bad) {
        drops[bad]++;
        return;
      }
      p.segment.stats.tunnelIn.frames++;
      p.segment.stats.tunnelIn.bytes += frame.length;
      toPort(p, frame);
    },
    fromSessionOffload(vni, sessionId, vnetHdr, frame) {
      const p = portOf(vni, sessionId);
      if (!p) return;
      const off = parseOffload(vnetHdr, frame);
      if (typeof off === 'string') {
        drops[off]++;
        return;
      }
      const bad = parseEthernet(headFrame(off, frame), view);
      if (bad) {
        drops[bad]++;
        return;
      }
      offloadStats.recordsIn++;
      p.segment.stats.tunnelIn.frames++;
      p.segment.stats.tunnelIn.bytes += frame.length;
      if (p.tap?.vnetHdr === true && !p.pending && addon.writeOffload) {
        // Frames queued before it go first: a flow is never reordered.
        flush(p);
        if (addon.writeOffload(p.tap, vnetHdr, frame)) offloadStats.whole++;
        else drops['port-write']++;
        return;
      }
      const segs: Buffer[] = [];
      // Cut to fit the fabric's 1,500-byte inner packets, as the userspace switch does toward VTEPs.
      toFrames(off, frame, segs, off.gso ? Math.min(off.mss, FABRIC_IP_MTU - (off.headers - off.l3)) : off.mss);
      offloadStats.segmentsOut += segs.length;
      for (const s of segs) toPort(p, s);
    },
    *segmentStats() {
      // MAC tables are the kernel's (`bridge fdb show br <prefix>b<vni>`); VTEP counters are the vxlan device's.
      for (const s of segments.values()) yield { info: s.info, stats: s.stats, macs: 0, sessions: s.ports.size };
    },
    settled: () => work.then(() => undefined),
    async close() {
      // The devices go first, all in one request with the descriptors still open; closing a descriptor
      // whose device is gone is then free (closing it first waits for the RTNL lock once per port).
      const live = [...ports.values()];
      for (const p of live) {
        p.closed = true;
        if (p.tap) doomed.push({ name: p.name, tap: p.tap });
      }
      ports.clear();
      if (removal) clearTimeout(removal);
      await work;
      await removeDoomed();
      await Promise.all([ip.close(), bridgeTool.close()]);
    },
  };
}
