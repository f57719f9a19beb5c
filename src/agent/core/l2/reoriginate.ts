// SPDX-License-Identifier: UNLICENSED
// Re-origination of announcements after a binding moved (DR failover, failback, a NIC swap): 2-3 copies
// of a gratuitous ARP (IPv4) or an unsolicited NA with Override set (IPv6), about a second apart, sent
// on behalf of the new holder toward the side that has to learn. Without them LAN hosts and routers keep
// the stale MAC until their caches age (Linux ~30 s plus stale handling, many routers 4 h).
//
// Pure scheduler: `schedule` records what to send, `due(now)` hands back the frames whose time has come.
// The agent calls due() from its timer and after each batch of frames. One schedule per IP: a newer move
// of the same IP replaces the pending copies of the older one.
import { ARP_OP_REQUEST, encodeArp, encodeGratuitousArp } from './arp.js';
import { encodeNa, encodeNs, IPV6_UNSPECIFIED } from './nd.js';
import type { NeighbourKey } from './neighbour-table.js';
import type { FrameSide } from './side.js';

export interface DueFrame {
  readonly toward: FrameSide;
  /** Shared between the copies of one schedule: write it, do not modify it. */
  readonly frame: Buffer;
}

export interface ReoriginatorOptions {
  /** Copies per move. Default 3. */
  copies?: number;
  /** Gap between copies. Default 1000 ms. */
  intervalMs?: number;
  /** IPs with pending copies; beyond this new schedules are refused (counted). Default 256. */
  maxPending?: number;
}

export interface ReoriginateSpec {
  key: NeighbourKey;
  mac: number;
  toward: FrameSide;
  /** IPv6 only: the router flag of the holder, repeated in the NA. */
  router?: boolean;
}

interface Pending {
  toward: FrameSide;
  frame: Buffer;
  nextMs: number;
  left: number;
}

const NONE: readonly DueFrame[] = Object.freeze([]);

export class Reoriginator {
  readonly copies: number;
  readonly intervalMs: number;
  readonly maxPending: number;
  readonly #pending = new Map<NeighbourKey, Pending>();
  #refused = 0;
  #sent = 0;

  constructor(options: ReoriginatorOptions = {}) {
    this.copies = Math.max(1, Math.floor(options.copies ?? 3));
    this.intervalMs = Math.max(1, options.intervalMs ?? 1000);
    this.maxPending = Math.max(1, options.maxPending ?? 256);
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Schedules refused because too many IPs were pending (a move storm). */
  get refused(): number {
    return this.#refused;
  }

  /** Copies handed out by due(). */
  get sent(): number {
    return this.#sent;
  }

  /** The first copy is due immediately. Returns false when refused. */
  schedule(spec: ReoriginateSpec, now: number): boolean {
    if (!this.#pending.has(spec.key) && this.#pending.size >= this.maxPending) {
      this.#refused++;
      return false;
    }
    this.#pending.set(spec.key, { toward: spec.toward, frame: announcement(spec), nextMs: now, left: this.copies });
    return true;
  }

  /**
   * Asks the LAN holder of `key` whether it is still alive before `claimantMac` (on the other side) may
   * take the address: a unicast ARP probe (sender IP 0.0.0.0, RFC 5227) or a DAD NS (source ::) sent to
   * the holder's MAC, from the claimant's MAC. A live holder answers toward the claimant's MAC, which the
   * LAN bridge has learned on the Connector's port, so the answer passes through the policy and shows the
   * split brain. Probes update no caches (RFC 5227 2.1.1, RFC 4862 5.4), so nobody's view of the address
   * changes. The Connector's own MAC cannot be used: the bridge would deliver the answer to the host
   * stack, not to the tap. Two copies, `intervalMs` apart; replaces pending copies for the same IP.
   */
  scheduleVerify(key: NeighbourKey, holderMac: number, claimantMac: number, now: number): boolean {
    if (!this.#pending.has(key) && this.#pending.size >= this.maxPending) {
      this.#refused++;
      return false;
    }
    this.#pending.set(key, { toward: 'lan', frame: verifyProbe(key, holderMac, claimantMac), nextMs: now, left: Math.min(2, this.copies) });
    return true;
  }

  cancel(key: NeighbourKey): void {
    this.#pending.delete(key);
  }

  /** When the next copy is due, or Infinity when nothing is pending (for the agent's timer). */
  nextDueMs(): number {
    let t = Infinity;
    for (const p of this.#pending.values()) if (p.nextMs < t) t = p.nextMs;
    return t;
  }

  /** Frames due at `now`, at most one copy per IP per call. */
  due(now: number): readonly DueFrame[] {
    if (this.#pending.size === 0) return NONE;
    let out: DueFrame[] | null = null;
    for (const [key, p] of this.#pending) {
      if (p.nextMs > now) continue;
      (out ??= []).push({ toward: p.toward, frame: p.frame });
      this.#sent++;
      p.left--;
      // From `now`, not the planned time: a late timer must not bunch the remaining copies together.
      p.nextMs = now + this.intervalMs;
      if (p.left <= 0) this.#pending.delete(key);
    }
    return out ?? NONE;
  }
}

function verifyProbe(key: NeighbourKey, holderMac: number, claimantMac: number): Buffer {
  if (typeof key === 'number') {
    return encodeArp({ op: ARP_OP_REQUEST, senderMac: claimantMac, senderIp: 0, targetMac: 0, targetIp: key, ethDst: holderMac });
  }
  const ip = Buffer.from(key, 'hex');
  return encodeNs({ srcMac: claimantMac, srcIp: IPV6_UNSPECIFIED, targetIp: ip, ethDst: holderMac });
}

function announcement(spec: ReoriginateSpec): Buffer {
  if (typeof spec.key === 'number') return encodeGratuitousArp(spec.mac, spec.key);
  const ip = Buffer.from(spec.key, 'hex');
  return encodeNa({ srcMac: spec.mac, srcIp: ip, targetIp: ip, router: spec.router ?? false, solicited: false, override: true });
}
