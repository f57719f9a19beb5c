// SPDX-License-Identifier: UNLICENSED
// The LAN port as an 802.1Q trunk, in user space (the device kernel may have no VLAN sub-interfaces): one
// TAP in, one FrameDevice per configured VLAN out. A frame tagged with a configured VLAN ID leaves its tag
// here and reaches that VLAN's own policy and tunnel session; frames that VLAN's session sends to the LAN
// get the tag pushed back. Untagged frames, priority-tagged ones (VID 0) and tags that are not configured
// stay on the untagged device, whose policy drops tagged frames (`vlan-tagged`) unless vlan_mode says
// otherwise: a VLAN never leaks into another segment.
// No per-frame allocation: popped and tagged copies live in pools reused batch after batch (the consumers
// of a batch finish with it before returning, as with the TAP's own buffers). The PCP/DEI bits are not
// carried across the tunnel; frames pushed back to the LAN carry PCP 0.
import { ETH_MAX_FRAME, ETHERTYPE_VLAN } from '../../shared/l2/ethernet.js';
import type { FrameDevice } from './ports.js';

export interface VlanTrunkCounters {
  /** Frames that arrived tagged with a configured VLAN, by VLAN ID. */
  popped: Record<number, number>;
  /** Frames written to the LAN with a VLAN's tag pushed, by VLAN ID. */
  pushed: Record<number, number>;
}

export interface VlanTrunk {
  /** Untagged frames and tags that are not configured. */
  readonly untagged: FrameDevice;
  /** The frames of one configured VLAN, without their tag. */
  device(vid: number): FrameDevice;
  readonly counters: VlanTrunkCounters;
}

/** Offset of the TPID / TCI after the two MAC addresses. */
const TAG_OFFSET = 12;
const TAG_LEN = 4;
/** Without the FCS. */
const ETH_MIN_FRAME = 60;

/** A pool of buffers reused for every batch; grows to the largest batch seen. */
class Pool {
  readonly #bufs: Buffer[] = [];
  take(i: number, len: number): Buffer {
    let b = this.#bufs[i];
    if (b === undefined || b.length < len) {
      b = Buffer.allocUnsafe(Math.max(len, ETH_MAX_FRAME));
      this.#bufs[i] = b;
    }
    return b.subarray(0, len);
  }
}

interface Port {
  handler: ((frames: readonly Buffer[]) => void) | undefined;
  readonly batch: Buffer[];
}

export function vlanTrunk(tap: FrameDevice, vids: readonly number[]): VlanTrunk {
  for (const v of vids) if (!Number.isInteger(v) || v < 1 || v > 4094) throw new RangeError(`VLAN ID ${v} is outside 1..4094`);
  const counters: VlanTrunkCounters = { popped: {}, pushed: {} };
  const untagged: Port = { handler: undefined, batch: [] };
  const ports = new Map<number, Port>();
  for (const v of vids) {
    ports.set(v, { handler: undefined, batch: [] });
    counters.popped[v] = 0;
    counters.pushed[v] = 0;
  }
  const rxPool = new Pool();
  const txPool = new Pool();
  const tagged: Buffer[] = [];

  tap.onFrames((frames) => {
    let pooled = 0;
    for (const f of frames) {
      const vid = f.length >= TAG_OFFSET + TAG_LEN + 2 && f.readUInt16BE(TAG_OFFSET) === ETHERTYPE_VLAN ? f.readUInt16BE(14) & 0x0fff : 0;
      const port = vid !== 0 ? ports.get(vid) : undefined;
      if (port === undefined) {
        untagged.batch.push(f);
        continue;
      }
      // A minimum-size tagged frame is 4 bytes short once popped: pad it back to 60, as a switch does.
      const out = rxPool.take(pooled++, Math.max(f.length - TAG_LEN, ETH_MIN_FRAME));
      f.copy(out, 0, 0, TAG_OFFSET);
      const end = f.copy(out, TAG_OFFSET, TAG_OFFSET + TAG_LEN) + TAG_OFFSET;
      if (end < out.length) out.fill(0, end);
      port.batch.push(out);
      counters.popped[vid] = (counters.popped[vid] ?? 0) + 1;
    }
    deliver(untagged);
    for (const p of ports.values()) deliver(p);
  });

  function deliver(p: Port): void {
    if (p.batch.length === 0) return;
    try {
      p.handler?.(p.batch);
    } finally {
      p.batch.length = 0;
    }
  }

  const device = (port: Port, write: (frames: readonly Buffer[]) => number): FrameDevice => ({
    maxBatch: tap.maxBatch,
    onFrames(h) {
      port.handler = h;
    },
    writeFrames: write,
    // The TAP belongs to the agent, which closes it once.
    async close() {},
  });

  return {
    untagged: device(untagged, (frames) => tap.writeFrames(frames)),
    device(vid) {
      const port = ports.get(vid);
      if (port === undefined) throw new RangeError(`VLAN ${vid} is not configured on this trunk`);
      const tci = vid & 0x0fff;
      return device(port, (frames) => {
        for (let i = 0; i < frames.length; i++) {
          const f = frames[i] as Buffer;
          const out = txPool.take(i, f.length + TAG_LEN);
          f.copy(out, 0, 0, TAG_OFFSET);
          out.writeUInt16BE(ETHERTYPE_VLAN, TAG_OFFSET);
          out.writeUInt16BE(tci, TAG_OFFSET + 2);
          f.copy(out, TAG_OFFSET + TAG_LEN, TAG_OFFSET);
          tagged.push(out);
        }
        try {
          const n = tap.writeFrames(tagged);
          counters.pushed[vid] = (counters.pushed[vid] ?? 0) + n;
          return n;
        } finally {
          tagged.length = 0;
        }
      });
    },
    counters,
  };
}
