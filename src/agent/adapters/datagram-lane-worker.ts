// SPDX-License-Identifier: UNLICENSED
// A datagram lane's worker thread (datagram-lanes.ts starts it): the lane's UDP socket and channel, run by
// the same code as the first lane (datagram-link.ts) against a stand-in for the tunnel session. Frames
// from the event loop are sealed in the order they came; frames received are copied into a buffer and
// handed back (LaneOutbox). The worker logs through the loop, which owns the log's format and level.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { parseOffload, toFrames } from '../../shared/l2/tso-segment.js';
import type { LogFields, Logger } from '../../shared/log.js';
import { loadTapAddon } from '../../shared/native/addon.js';
import { monotonicClock } from '../../shared/system-time.js';
import { CoDel } from '../../shared/tunnel/codel.js';
import type { ControlMessage } from '../../shared/tunnel/control.js';
import { openDatagramLink, type DatagramSessionPort } from './datagram-link.js';
import { admit, BufferShuttle, LaneOutbox, type FromLane, type LaneInit, type ToLane } from './datagram-lanes.js';

/** True in a thread started by startLanes(): the entry module runs the lane instead of the program. */
export function isLaneWorker(): boolean {
  return parentPort !== null && typeof workerData === 'object' && workerData !== null && 'ckLane' in workerData;
}

const STATS_MS = 1_000;

export function runLaneWorker(): void {
  // Named for `top -H` and the bench's per-thread slow cores; without the addon it keeps node's name.
  try {
    loadTapAddon().threadName?.('ck-lane');
  } catch {
    // no addon here: the AEAD falls back to node:crypto too, and the log says so
  }
  const port = parentPort as MessagePort;
  const init = (workerData as { ckLane: LaneInit }).ckLane;
  const post = (m: FromLane, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer ?? []);
  const logger = (base: LogFields): Logger => {
    const at =
      (level: 'debug' | 'info' | 'warn' | 'error') =>
      (msg: string, fields?: LogFields): void =>
        post({ t: 'log', level, msg, fields: { ...base, ...fields } });
    return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (f) => logger({ ...base, ...f }) };
  };
  let lost = 0;
  const shuttle = new BufferShuttle();
  const rx = new LaneOutbox(shuttle, new Int32Array(init.rxTaken), (m) => post({ t: 'rx', ...m }, [m.buf, ...m.free]));
  const codel = new CoDel(init.aqm.intervalMs);
  let aqmDrops = 0;
  const txTaken = new Int32Array(init.txTaken);
  // The stand-in for the tunnel session: what the link hands it goes to the event loop.
  const session: DatagramSessionPort = {
    datagramTx: null,
    datagramTxOffload: null,
    receiveFrames(frames: readonly Buffer[]) {
      for (const f of frames) if (rx.room(5 + f.length)) rx.batch.put(f);
    },
    // Lanes do not announce their path state to the headend: the session's is the first lane's.
    sendControl(_msg: ControlMessage) {},
  };
  let wasUp = false;
  const link = openDatagramLink({
    session,
    keys: Buffer.from(init.keyBlock),
    host: init.host,
    offer: { peerId: init.peerId, port: init.port, splits: init.splits, bundles: init.bundles, laneIds: [] },
    ...(init.localAddress !== undefined ? { localAddress: init.localAddress } : {}),
    ...(init.sendThread === true ? { sendThread: true } : {}),
    ...(init.timing ? { timing: init.timing } : {}),
    clock: monotonicClock,
    log: logger({}),
    txChanged: () => {
      const up = session.datagramTx !== null;
      if (up !== wasUp) post({ t: 'state', up: (wasUp = up) });
    },
  });
  (init.keyBlock as Uint8Array).fill(0);
  if (link === null) {
    post({ t: 'log', level: 'error', msg: 'datagram lane not opened', fields: {} });
    port.close();
    return;
  }
  const segments: Buffer[] = [];
  const sendOne = (frame: Buffer): void => {
    if (session.datagramTx?.(frame) !== true) lost++;
  };
  port.on('message', (m: ToLane) => {
    if (m.t === 'close') {
      clearInterval(stats);
      rx.close();
      link.close();
      port.close();
      return;
    }
    if (m.t === 'free') return shuttle.give(m.free);
    shuttle.give(m.free);
    aqmDrops += admit(codel, init.aqm.targetMs, m, (frame, hdr) => {
      if (hdr === null) return sendOne(frame);
      const o = parseOffload(hdr, frame);
      if (typeof o === 'string') return void lost++;
      if (session.datagramTxOffload !== null && session.datagramTxOffload(o, frame) > 0) return;
      // Not cut in C here (no payload, or this lane cannot): as ordinary frames, in order.
      toFrames(o, frame, segments);
      for (const s of segments) sendOne(s);
      segments.length = 0;
    });
    shuttle.done(m.buf);
    Atomics.add(txTaken, 0, m.used);
    if (shuttle.returnDue)
      queueMicrotask(() => {
        const free = shuttle.returns();
        if (free.length > 0) post({ t: 'free', free }, free);
      });
  });
  const stats = setInterval(() => {
    const c = link.counters;
    post({
      t: 'stats',
      stats: {
        tx: link.tx,
        datagramsIn: c.datagramsIn,
        datagramsOut: c.datagramsOut,
        lost,
        drops: { ...c.drops },
        aqmDrops,
        queueFull: rx.full,
      },
    });
  }, STATS_MS);
}
