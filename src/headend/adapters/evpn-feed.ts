// SPDX-License-Identifier: UNLICENSED
// The EVPN fabric option (docs/ha.md): the headend's switch is in user space, so FRR's zebra cannot see
// what it learned. This feed publishes every MAC behind a tunnel session as a dynamic FDB entry on one
// kernel bridge port per segment (`evpn.port`, e.g. a veth `ev<vni>` on bridge `br<vni>` next to FRR's
// vxlan device); zebra advertises those entries as EVPN type-2 routes with this host as next hop, and
// after a failover the new headend's entries (a higher MAC-mobility sequence) move the fabric's entries
// by route, not by flooding. One long-lived `bridge -batch` child takes the commands; a periodic
// reconcile refreshes live entries (before the bridge's ageing time) and deletes the ones gone.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Logger } from '../../shared/log.js';
import { macToString } from '../../shared/l2/mac.js';
import type { Forwarder } from '../core/forwarder.js';

export interface EvpnFeedOptions {
  /** The bridge port of segment `vni`: `{vni}` in the template is replaced. */
  portTemplate: string;
  log: Logger;
  /** The `bridge` binary (tests). */
  bridgeBin?: string;
}

export interface EvpnFeed {
  /** A MAC appeared behind a session of segment `vni`, or moved to one. */
  learned(vni: number, mac: number): void;
  /** The full set of live session MACs per segment: refreshes them and withdraws the rest. */
  reconcile(current: Iterable<{ vni: number; macs: readonly number[] }>): void;
  /** Forgets what an earlier process of this headend left on the ports of `vnis`. */
  flush(vnis: Iterable<number>): void;
  close(): void;
}

export function portFor(template: string, vni: number): string {
  return template.replaceAll('{vni}', String(vni));
}

export function openEvpnFeed(o: EvpnFeedOptions): EvpnFeed {
  let child: ChildProcessWithoutNullStreams | null = null;
  let closed = false;
  /** What is on the kernel ports now, per VNI. */
  const published = new Map<number, Set<number>>();
  const start = (): ChildProcessWithoutNullStreams => {
    // -force: one refused line (a port that is not there yet) must not stop the rest.
    const c = spawn(o.bridgeBin ?? 'bridge', ['-force', '-batch', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    c.stdout.resume();
    c.stderr.setEncoding('utf8');
    c.stderr.on('data', (s: string) => o.log.warn('evpn feed: bridge refused a command', { error: s.trim().slice(0, 300) }));
    c.on('error', (e) => o.log.error('evpn feed: cannot run bridge', { error: e.message }));
    c.stdin.on('error', () => {});
    c.on('exit', (code, signal) => {
      if (child === c) child = null;
      if (!closed) o.log.warn('evpn feed: bridge exited; restarting on the next change', { code, signal });
    });
    return c;
  };
  const write = (lines: readonly string[]): void => {
    if (closed || lines.length === 0) return;
    child ??= start();
    child.stdin.write(lines.join('\n') + '\n');
  };
  const replace = (vni: number, mac: number): string =>
    `fdb replace ${macToString(mac)} dev ${portFor(o.portTemplate, vni)} master dynamic`;
  return {
    learned(vni, mac) {
      let set = published.get(vni);
      if (!set) published.set(vni, (set = new Set()));
      set.add(mac);
      write([replace(vni, mac)]);
    },
    reconcile(current) {
      const lines: string[] = [];
      const seen = new Set<number>();
      for (const { vni, macs } of current) {
        seen.add(vni);
        const now = new Set(macs);
        for (const mac of published.get(vni) ?? []) {
          if (!now.has(mac)) lines.push(`fdb del ${macToString(mac)} dev ${portFor(o.portTemplate, vni)} master`);
        }
        for (const mac of now) lines.push(replace(vni, mac));
        published.set(vni, now);
      }
      for (const [vni, macs] of published) {
        if (seen.has(vni)) continue;
        for (const mac of macs) lines.push(`fdb del ${macToString(mac)} dev ${portFor(o.portTemplate, vni)} master`);
        published.delete(vni);
      }
      write(lines);
    },
    flush(vnis) {
      write([...vnis].map((vni) => `fdb flush dev ${portFor(o.portTemplate, vni)} master dynamic`));
    },
    close() {
      closed = true;
      child?.stdin.end();
      child = null;
    },
  };
}

/** The EVPN fabric option: session MACs to the kernel bridge ports FRR advertises (openEvpnFeed above). */
export function attachEvpnFeed(forwarder: Forwarder, o: { port: string; refreshS: number }, log: Logger): () => void {
  const feed = openEvpnFeed({ portTemplate: o.port, log });
  // Entries a killed predecessor left behind would be advertised as if this process held them.
  feed.flush([...forwarder.sessionMacs()].map((s) => s.vni));
  forwarder.onSessionMac = (vni, mac) => feed.learned(vni, mac);
  const reconcile = (): void => feed.reconcile(forwarder.sessionMacs());
  const timer = setInterval(reconcile, o.refreshS * 1_000);
  timer.unref();
  // A session that left withdraws its MACs within a second (one pass for a burst of closes).
  let soon: NodeJS.Timeout | null = null;
  forwarder.onSessionGone = () => {
    soon ??= setTimeout(() => {
      soon = null;
      reconcile();
    }, 1_000);
  };
  log.info('evpn feed on', { port: o.port, refreshS: o.refreshS });
  return () => {
    clearInterval(timer);
    if (soon) clearTimeout(soon);
    feed.close();
  };
}
