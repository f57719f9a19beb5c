// SPDX-License-Identifier: UNLICENSED
// Many tunnel peers in one process, for tests that stop a headend with sessions up. Not a test file itself.
// Connects every device of CK_DEVICES (a JSON file: [{ cn, cert, key }]) to CK_HOST:CK_PORT with the DC CA
// in CK_CA, says hello, and stops reading on the first CK_PAUSED of them (peers that never answer a bye).
// Prints {"event":"up"} once every hello is acknowledged. On a line `report` on stdin it reads again on
// the paused ones, waits (at most 10 s) until every connection is closed, prints what the devices saw
// and exits. A line `alive` prints how many connections are still open. Events go to stdout as JSON lines.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { rawTunnel, type RawTunnel } from '../../integration/headend/adapters/fixtures.js';
import { encodeRecord } from '../../../src/shared/tunnel/records.js';
import { CONTROL_VNI, encodeControl } from '../../../src/shared/tunnel/control.js';
import type { Identity } from '../../helpers/pki.js';

const env = (k: string): string => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};
const emit = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');

const devices = JSON.parse(readFileSync(env('CK_DEVICES'), 'utf8')) as { cn: string; cert: string; key: string }[];
const ca = readFileSync(env('CK_CA'), 'utf8');
const port = Number(env('CK_PORT'));
const host = env('CK_HOST');
const paused = Number(process.env['CK_PAUSED'] ?? '0');

/** How long a device keeps trying: inside the tests' 120 s wait for the whole fleet. */
const GIVE_UP_MS = 100_000;
const started = Date.now();

/**
 * Connected and admitted; a refusal (pacing resets a connection that waited too long, a busy headend) is
 * tried again after a growing, jittered pause, as a unit would, until the fleet's time is up: on a loaded
 * CI box one device was refused 20 times in a row, and a fixed count of tries failed the fleet.
 */
async function connect(id: Identity): Promise<RawTunnel> {
  for (let attempt = 1; ; attempt++) {
    let why: unknown;
    try {
      const t = await rawTunnel(port, id, ca, host);
      const ack = await t.hello();
      if (ack.type === 'hello-ack') return t;
      t.socket.destroy();
      why = new Error(`${id.cn}: ${JSON.stringify(ack)}`);
    } catch (e) {
      why = e;
    }
    if (Date.now() - started > GIVE_UP_MS) throw new Error(`${id.cn}: not admitted after ${attempt} attempts`, { cause: why });
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(2_000, 100 * 2 ** Math.min(attempt, 5))));
  }
}

const countBy = (keys: string[]): Map<string, number> => {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
};

const peers: { cn: string; t: RawTunnel; closed: boolean; err: string }[] = [];
// Keepalives, as units send them (the headend closes a session it has not heard from in a while); the
// deaf peers send theirs too, so the headend holds unread bytes of every kind of peer when it stops.
let nonce = 0;
const keepalive = setInterval(() => {
  for (const p of peers) {
    if (!p.closed)
      p.t.socket.write(encodeRecord(CONTROL_VNI, encodeControl({ type: 'ping', nonce: ++nonce, t: Math.round(performance.now()) })));
  }
}, 1_000);
// A few at a time: the headend's admission pacing refuses a burst beyond its rate, as it should.
const PARALLEL = 16;
for (let i = 0; i < devices.length; i += PARALLEL) {
  await Promise.all(
    devices.slice(i, i + PARALLEL).map(async (d) => {
      const id: Identity = { cn: d.cn, cert: d.cert, key: d.key, certFile: '', keyFile: '' };
      const t = await connect(id);
      const p = { cn: d.cn, t, closed: false, err: '' };
      t.socket.on('error', (e: NodeJS.ErrnoException) => (p.err = e.code ?? e.message));
      void t.closed.then(() => (p.closed = true));
      peers.push(p);
    }),
  );
}
// Deaf in the kernel's sense: nothing is read from the socket, so what the headend sends waits in the
// receive queue. (A paused stream would read on into its own buffer and drop that when an error ends it.)
const handle = (p: { t: RawTunnel }): { readStop(): number; readStart(): number } =>
  (p.t.socket as unknown as { _handle: { readStop(): number; readStart(): number } })._handle;
for (const p of peers.slice(0, paused)) handle(p).readStop();
emit({ event: 'up', n: peers.length });

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === 'alive') emit({ event: 'alive', n: peers.filter((p) => !p.closed).length });
  if (line.trim() !== 'report') continue;
  clearInterval(keepalive);
  for (const p of peers.slice(0, paused)) if (!p.closed) handle(p).readStart();
  const until = Date.now() + 10_000;
  while (peers.some((p) => !p.closed) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  const byes = peers.map((p) => p.t.control.find((m) => m.type === 'bye'));
  emit({
    event: 'report',
    n: peers.length,
    closed: peers.filter((p) => p.closed).length,
    byes: byes.filter((b) => b !== undefined).length,
    byeReasons: [...new Set(byes.map((b) => (b?.type === 'bye' ? b.reason : 'none')))],
    withRetryAfter: byes.filter((b) => b?.type === 'bye' && (b.retryAfterMs ?? 0) > 0).length,
    errors: [...countBy(peers.map((p) => p.err || 'none'))],
    pausedWithBye: byes.slice(0, paused).filter((b) => b !== undefined).length,
  });
  process.exit(0);
}
