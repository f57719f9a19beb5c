// SPDX-License-Identifier: UNLICENSED
// The PostgreSQL registry at provider scale (issue 13 targets: 100,000 units, admission lookup p99 <= 2 ms,
// a change reaches every headend <= 1 s). A throwaway PostgreSQL in a temp dir (test/helpers/postgres.ts).
//   admission: admitDevice() on the registry a service holds (what the headend does per handshake), beside
//     two references: the file backend's per-request current() (stat + cached parse) and a per-handshake
//     database query (SELECT by serial over the unix socket).
//   propagation: from an operator claim's COMMIT (the writer's own time is reported beside it) until every
//     one of SUBSCRIBERS stores serves it. MODE=process (default): each subscriber is its own process, as
//     headends are (they still share this box's 2 cores); MODE=inline: all in this process, on one core.
// JSON on stdout, a table on stderr. UNITS, SUBSCRIBERS, ROUNDS override the sizes.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import pg from 'pg';
import { admitDevice, claimDevice, parseRegistry, type Registry } from '../../src/shared/registry/registry.js';
import { FileRegistryStore, writeRegistryFile } from '../../src/shared/registry/registry-file.js';
import { PostgresRegistryStore } from '../../src/shared/registry/registry-postgres.js';
import { startPostgres } from '../../test/helpers/postgres.js';

const UNITS = Number(process.env['UNITS'] ?? 100_000);
const SUBSCRIBERS = Number(process.env['SUBSCRIBERS'] ?? 4);
const ROUNDS = Number(process.env['ROUNDS'] ?? 20);
const LOOKUPS = 20_000;
const MODE = process.env['MODE'] ?? 'process';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return +(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN).toFixed(3);
}

function bigRegistry(): Registry {
  const tenants: Record<string, unknown> = {};
  for (let t = 0; t < 100; t++) tenants[`t${t}`] = { segments: { lan: { vni: 1_000 + t, vteps: ['192.0.2.1'] } } };
  const devices: Record<string, unknown> = {};
  for (let i = 0; i < UNITS; i++) {
    devices[`R3S-${String(i).padStart(6, '0')}`] =
      i % 10 === 0
        ? { state: 'allowed', updatedAt: '2026-12-04T00:00:00Z', batch: 'b1' }
        : { state: 'claimed', tenant: `t${i % 100}`, site: `site-${i}`, batch: 'b1', updatedAt: '2026-12-04T00:00:00Z' };
  }
  return parseRegistry({ version: 1, tenants, devices, denylist: [] });
}

/** A subscriber process: reports when the unit it was armed with becomes admitted (wall clock, ms). */
async function subscriber(url: string): Promise<void> {
  const s = await PostgresRegistryStore.open(url);
  let armed: string | null = null;
  const check = (): void => {
    if (armed !== null && admitDevice(s.current(), armed).ok) {
      process.stdout.write(`seen ${armed} ${performance.timeOrigin + performance.now()}\n`);
      armed = null;
    }
  };
  s.watch(check);
  process.stdout.write('ready\n');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'quit') break;
    armed = line;
    process.stdout.write(`armed ${line}\n`);
    check();
  }
  await s.close();
}

interface Child {
  proc: ChildProcessWithoutNullStreams;
  next(prefix: string): Promise<string>;
}

function spawnSubscriber(url: string): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--subscriber', url]);
  const lines: string[] = [];
  const waiters: { prefix: string; done: (l: string) => void }[] = [];
  createInterface({ input: proc.stdout }).on('line', (l) => {
    const w = waiters.findIndex((x) => l.startsWith(x.prefix));
    if (w >= 0) waiters.splice(w, 1)[0]!.done(l);
    else lines.push(l);
  });
  return {
    proc,
    next: (prefix) =>
      new Promise((done, fail) => {
        const i = lines.findIndex((l) => l.startsWith(prefix));
        if (i >= 0) return done(lines.splice(i, 1)[0]!);
        const timer = setTimeout(() => fail(new Error(`subscriber: no "${prefix}" within 120 s`)), 120_000);
        waiters.push({ prefix, done: (l) => (clearTimeout(timer), done(l)) });
      }),
  };
}

const cleanups: (() => void | Promise<void>)[] = [];
const ctx = {
  after: (fn: () => void | Promise<void>) => cleanups.push(fn),
  skip: (why: string) => {
    throw new Error(`cannot run: ${why}`);
  },
} as unknown as TestContext;

async function main(): Promise<void> {
  const pgs = startPostgres(ctx);
  if (!pgs) throw new Error('PostgreSQL missing');
  const url = pgs.newDatabase();
  const serials = Array.from({ length: LOOKUPS }, (_, i) => `R3S-${String((i * 7919) % UNITS).padStart(6, '0')}`);

  const reg = bigRegistry();
  const writer = await PostgresRegistryStore.open(url);
  cleanups.push(() => writer.close());
  let t0 = performance.now();
  await writer.update(() => reg);
  const loadMs = performance.now() - t0;
  t0 = performance.now();
  // One in-process store always: the admission figures are taken on it.
  const subs = [];
  for (let i = 0; i < (MODE === 'inline' ? SUBSCRIBERS : 1); i++) {
    const s = await PostgresRegistryStore.open(url);
    cleanups.push(() => s.close());
    subs.push(s);
  }
  const openMs = (performance.now() - t0) / subs.length;
  const children: Child[] = [];
  if (MODE !== 'inline') {
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const c = spawnSubscriber(url);
      cleanups.push(() => {
        c.proc.stdin.end('quit\n');
        setTimeout(() => c.proc.kill(), 5_000).unref();
      });
      children.push(c);
    }
    await Promise.all(children.map((c) => c.next('ready')));
  }

  // Admission on the held registry.
  const held: number[] = [];
  for (const serial of serials) {
    const a = performance.now();
    admitDevice(subs[0]!.current(), serial);
    held.push(performance.now() - a);
  }
  // Reference: the file backend, as the headend and EST server read it per request.
  const dir = mkdtempSync(join(tmpdir(), 'ck-bench-reg-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeRegistryFile(join(dir, 'registry.json'), reg);
  const file = new FileRegistryStore(join(dir, 'registry.json'));
  file.current();
  const fileTimes: number[] = [];
  for (const serial of serials) {
    const a = performance.now();
    admitDevice(file.current(), serial);
    fileTimes.push(performance.now() - a);
  }
  // Reference: asking the database per handshake.
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  cleanups.push(() => c.end());
  const dbTimes: number[] = [];
  for (const serial of serials.slice(0, 5_000)) {
    const a = performance.now();
    await c.query('SELECT doc FROM ck_devices WHERE serial = $1', [serial]);
    dbTimes.push(performance.now() - a);
  }

  // Propagation: claim an allowed unit, wait until every subscriber serves it.
  const prop: number[] = [];
  const writes: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const serial = `R3S-${String(r * 10).padStart(6, '0')}`; // i % 10 === 0: allowed
    for (const c of children) c.proc.stdin.write(serial + '\n');
    await Promise.all(children.map((c) => c.next(`armed ${serial}`)));
    const start = performance.now();
    // What `connector unit claim` does: one unit validated, the device map shared.
    await writer.update((x) => claimDevice(x, serial, 't0', new Date()));
    const committed = performance.now();
    writes.push(committed - start);
    if (MODE === 'inline') {
      const deadline = committed + 10_000;
      while (!subs.every((s) => admitDevice(s.current(), serial).ok) && performance.now() < deadline) {
        await new Promise((res) => setTimeout(res, 1));
      }
      const done = performance.now();
      prop.push(subs.every((s) => admitDevice(s.current(), serial).ok) ? done - committed : Infinity);
    } else {
      const seen = await Promise.all(children.map(async (c) => Number((await c.next(`seen ${serial}`)).split(' ')[2])));
      prop.push(Math.max(...seen) - (performance.timeOrigin + committed));
    }
  }

  const result = {
    units: UNITS,
    subscribers: SUBSCRIBERS,
    mode: MODE,
    rounds: ROUNDS,
    loadMs: +loadMs.toFixed(0),
    openMsPerSubscriber: +openMs.toFixed(0),
    admissionMs: {
      postgresHeld: { p50: pct(held, 50), p99: pct(held, 99), max: pct(held, 100) },
      fileReference: { p50: pct(fileTimes, 50), p99: pct(fileTimes, 99), max: pct(fileTimes, 100) },
      dbQueryReference: { p50: pct(dbTimes, 50), p99: pct(dbTimes, 99), max: pct(dbTimes, 100) },
    },
    propagationMs: { p50: pct(prop, 50), p99: pct(prop, 99), max: pct(prop, 100) },
    operatorWriteMs: { p50: pct(writes, 50), p99: pct(writes, 99), max: pct(writes, 100) },
    targets: { admissionP99Ms: 2, propagationMs: 1_000 },
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  const a = result.admissionMs;
  process.stderr.write(
    [
      `| registry, ${UNITS} units | p50 | p99 | max | target |`,
      '|---|---|---|---|---|',
      `| admission, PostgreSQL backend (held in memory) | ${a.postgresHeld.p50} ms | ${a.postgresHeld.p99} ms | ${a.postgresHeld.max} ms | p99 <= 2 ms |`,
      `| admission, file backend (reference) | ${a.fileReference.p50} ms | ${a.fileReference.p99} ms | ${a.fileReference.max} ms | |`,
      `| admission, SELECT per handshake (reference) | ${a.dbQueryReference.p50} ms | ${a.dbQueryReference.p99} ms | ${a.dbQueryReference.max} ms | |`,
      `| committed claim -> all ${SUBSCRIBERS} subscribers (${MODE === 'inline' ? 'one process' : 'own processes'}) serve it (${ROUNDS} rounds) | ${result.propagationMs.p50} ms | ${result.propagationMs.p99} ms | ${result.propagationMs.max} ms | <= 1000 ms |`,
      `| the operator's write itself (claimDevice + transaction) | ${result.operatorWriteMs.p50} ms | ${result.operatorWriteMs.p99} ms | ${result.operatorWriteMs.max} ms | |`,
      `load ${UNITS} units: ${result.loadMs} ms; open (migrate check + full load + LISTEN): ${result.openMsPerSubscriber} ms per subscriber`,
      '',
    ].join('\n'),
  );
}

if (process.argv[2] === '--subscriber') {
  await subscriber(process.argv[3] as string);
} else {
  try {
    await main();
  } finally {
    for (const f of cleanups.reverse()) await f();
  }
}
