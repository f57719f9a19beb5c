// SPDX-License-Identifier: UNLICENSED
// A headend of several processes (config `workers`, kernel L2 engine): the primary forks the workers,
// which share the listening socket (each accepts when its admission pacing lets it), and every worker
// runs the whole session life cycle for its connections. The audit chain has one writer, so a worker's audit
// records travel to the primary over the IPC channel in order; scrapes and session lists are gathered
// from the workers on request; reload and stop are the primary's to give. A worker that dies is forked
// again (its Connectors reconnect to the others meanwhile); a worker whose primary is gone stops.
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../shared/log.js';
import type { AuditEvent, AuditFields } from '../../shared/audit/chain.js';

/** The variable naming a worker's index (1..N) in its environment. */
export const WORKER_ENV = 'CONNECTOR_HEADEND_WORKER';

type ToPrimary =
  | { t: 'listening'; tunnel: AddressInfo; datagramPort: number | null }
  | { t: 'audit'; event: AuditEvent; fields: AuditFields }
  | { t: 'answer'; id: number; ok: boolean; value: unknown }
  | { t: 'stopped' };
type ToWorker =
  { t: 'ask'; id: number; what: 'metrics' | 'sessions'; detail: 'tenant' | 'segment' } | { t: 'reload' } | { t: 'stop'; exiting: boolean };

/** How long the primary waits for a worker's answer or its stop before giving up on it. */
const ASK_TIMEOUT_MS = 5_000;
const STOP_TIMEOUT_MS = 10_000;
/** A worker that dies is forked again after this pause (a crash loop must not spin). */
const REFORK_MS = 1_000;

export interface WorkerPool {
  /** Resolves when every worker listens, with the first one's tunnel address. */
  readonly ready: Promise<{ tunnel: AddressInfo; datagramPorts: (number | null)[] }>;
  /** Each live worker's answer, in worker order; a worker that does not answer is left out. */
  ask(what: 'metrics' | 'sessions', detail?: 'tenant' | 'segment'): Promise<{ worker: number; value: unknown }[]>;
  reload(): void;
  /**
   * Asks every worker to say bye to its sessions and exit; resolves when all have. `exiting`: the whole
   * headend exits, and each worker leaves its connections to its own exit once the byes are out.
   */
  stop(exiting?: boolean): Promise<void>;
  readonly live: number;
}

export function isHeadendWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] !== undefined;
}

export function headendWorkerIndex(): number {
  return Number(process.env[WORKER_ENV] ?? 0);
}

export function forkWorkers(count: number, log: Logger, audit: (event: AuditEvent, fields: AuditFields) => void): WorkerPool {
  // The workers accept from the shared socket themselves. Round robin would have the primary accept every
  // connection at once and queue it where no worker's admission pacing sees it: in a fleet's reconnect
  // they waited there past the agents' connect timeout (0 of 5,000 up after 60 s in the load tool).
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const workers = new Map<number, Worker>();
  const waiting = new Map<number, { resolve(v: unknown): void; timer: NodeJS.Timeout }>();
  const listening = new Map<number, { tunnel: AddressInfo; datagramPort: number | null }>();
  let askId = 0;
  let stopping = false;
  let readyResolve: (v: { tunnel: AddressInfo; datagramPorts: (number | null)[] }) => void = () => {};
  let readyReject: (e: Error) => void = () => {};
  const ready = new Promise<{ tunnel: AddressInfo; datagramPorts: (number | null)[] }>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  let started = false;

  const fork = (index: number): void => {
    const w = cluster.fork({ [WORKER_ENV]: String(index) });
    workers.set(index, w);
    w.on('message', (m: ToPrimary) => {
      if (m.t === 'audit') audit(m.event, m.fields);
      else if (m.t === 'answer') {
        const p = waiting.get(m.id);
        if (p) {
          waiting.delete(m.id);
          clearTimeout(p.timer);
          p.resolve(m.ok ? m.value : undefined);
        }
      } else if (m.t === 'listening') {
        listening.set(index, { tunnel: m.tunnel, datagramPort: m.datagramPort });
        if (!started && listening.size === count) {
          started = true;
          const first = listening.get(1) ?? m;
          readyResolve({
            tunnel: first.tunnel,
            datagramPorts: [...Array(count).keys()].map((i) => listening.get(i + 1)?.datagramPort ?? null),
          });
        }
      }
    });
    w.on('exit', (code, signal) => {
      if (workers.get(index) === w) workers.delete(index);
      if (stopping) return;
      if (!started) {
        readyReject(new Error(`headend worker ${index} exited before listening (${signal ?? code}); its log says why`));
        return;
      }
      log.error('headend worker died; forking it again', { worker: index, code, signal, inMs: REFORK_MS });
      setTimeout(() => !stopping && fork(index), REFORK_MS).unref();
    });
  };
  for (let i = 1; i <= count; i++) fork(i);

  return {
    ready,
    get live() {
      return workers.size;
    },
    async ask(what, detail = 'tenant') {
      const asks = [...workers].map(
        ([index, w]) =>
          new Promise<{ worker: number; value: unknown }>((resolve) => {
            const id = ++askId;
            const timer = setTimeout(() => {
              waiting.delete(id);
              resolve({ worker: index, value: undefined });
            }, ASK_TIMEOUT_MS);
            waiting.set(id, { resolve: (value) => resolve({ worker: index, value }), timer });
            w.send({ t: 'ask', id, what, detail } satisfies ToWorker);
          }),
      );
      const answers = await Promise.all(asks);
      return answers.filter((a) => a.value !== undefined).sort((a, b) => a.worker - b.worker);
    },
    reload() {
      for (const w of workers.values()) w.send({ t: 'reload' } satisfies ToWorker);
    },
    async stop(exiting = false) {
      stopping = true;
      await Promise.all(
        [...workers.values()].map(
          (w) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => w.process.kill('SIGKILL'), STOP_TIMEOUT_MS);
              w.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
              w.send({ t: 'stop', exiting } satisfies ToWorker);
            }),
        ),
      );
    },
  };
}

export interface WorkerSide {
  scrapeMetrics(detail: 'tenant' | 'segment'): Promise<string>;
  sessions(): unknown;
  reload(): Promise<void>;
  close(o?: { exiting?: boolean }): Promise<void>;
}

/** In a worker: audit records go to the primary, in order. */
export function auditToPrimary(event: AuditEvent, fields: AuditFields): void {
  process.send?.({ t: 'audit', event, fields } satisfies ToPrimary);
}

/** In a worker: tells the primary it listens, answers it, and stops when told or when it is gone. */
export function serveWorker(h: WorkerSide, tunnel: AddressInfo, datagramPort: number | null, log: Logger): Promise<void> {
  return new Promise((done) => {
    let stopping = false;
    const stop = async (why: string, exiting = false): Promise<void> => {
      if (stopping) return;
      stopping = true;
      log.info('headend worker stopping', { why });
      await h.close({ exiting }).catch((e: unknown) => log.error('headend worker stop failed', { error: String(e) }));
      process.removeListener('message', onMessage);
      // The IPC channel would keep this process alive: it goes once the primary has the last word. The
      // command exits when this resolves, so not before that word (and every audit record queued ahead
      // of it) is written to the channel.
      if (!process.connected) return done();
      process.send?.({ t: 'stopped' } satisfies ToPrimary, () => {
        process.disconnect();
        done();
      });
    };
    const onMessage = (m: ToWorker): void => {
      if (m.t === 'stop') void stop('primary', m.exiting);
      else if (m.t === 'reload') void h.reload();
      else if (m.t === 'ask') {
        const id = m.id;
        const answer = (ok: boolean, value: unknown): void => void process.send?.({ t: 'answer', id, ok, value } satisfies ToPrimary);
        Promise.resolve()
          .then(() => (m.what === 'metrics' ? h.scrapeMetrics(m.detail) : h.sessions()))
          .then(
            (value) => answer(true, value),
            (e: unknown) => answer(false, String(e)),
          );
      }
    };
    process.on('message', onMessage);
    // The primary gone (kill -9): this worker's sessions hear a bye and the process ends.
    process.once('disconnect', () => void stop('primary-gone'));
    process.send?.({ t: 'listening', tunnel, datagramPort } satisfies ToPrimary);
  });
}
