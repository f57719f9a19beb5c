// SPDX-License-Identifier: UNLICENSED
// The floor under the headend's kill -9 teardown stall (issue 19): a bare Node TLS 1.3 server, no
// application code but an error handler, a destroy on the peer's end and a close counter, holding N
// connections from client processes (one per 1,000, as the load tool's fleet) that are then killed with
// SIGKILL. The kernel reports the ends together, and Node handles each socket's (its TLS wrap, its
// stream's end and close events) in the loop's poll phase, up to 1,024 a turn and more turns while the
// kernel's batches come full: no timer or other I/O runs between them. The figure is the longest the
// loop was held (the largest gap between ticks of a 1 ms timer) and how long until all N closed; the
// headend's teardown stall (`npm run bench:headend-load`) is read against it. JSON on stdout, a table
// on stderr. N=1000,2000,5000 by default (SESSIONS=a,b,c to change); loopback only; needs
// `ulimit -n` above N (every connection is a descriptor in the server and one in a client).
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { createSelfSignedCa, exportPrivateKeyPem, generateKeyPair } from '../../src/shared/pki/x509.js';

const SIZES = (process.env['SESSIONS'] ?? '1000,2000,5000').split(',').map(Number);

// The client: opens N TLS connections to the port in argv, reports "up", then waits to be killed.
if (process.argv[2] === 'client') {
  const port = Number(process.argv[3]);
  const n = Number(process.argv[4]);
  const held: TLSSocket[] = [];
  let up = 0;
  let next = 0;
  // 100 handshakes in flight at a time, so the server's accept queue never overflows.
  const open = (): void => {
    if (next >= n) return;
    next++;
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, () => {
      if (++up === n) process.send?.('up');
      open();
    });
    s.on('error', (e) => {
      process.stderr.write(`client: ${e.message}\n`);
      process.exit(1);
    });
    held.push(s);
  };
  for (let i = 0; i < 100; i++) open();
} else {
  await main();
}

async function main(): Promise<void> {
  // The server's certificate: a self-signed P-256 one, as the headend's (its content does not matter here).
  const keys = await generateKeyPair();
  const now = Date.now();
  const cert = Buffer.from(
    (await createSelfSignedCa({ cn: 'bench' }, keys, new Date(now - 3_600_000), new Date(now + 86_400_000))).toString('pem'),
  );
  const key = Buffer.from(await exportPrivateKeyPem(keys.privateKey));
  const results: { sessions: number; loopHeldMs: number; allClosedMs: number }[] = [];
  for (const n of SIZES) results.push(await once(n, key, cert));
  process.stdout.write(JSON.stringify({ bench: 'tls-mass-close', node: process.version, results }) + '\n');
  process.stderr.write('sessions  loop held (max gap of a 1 ms timer)  all closed\n');
  for (const x of results)
    process.stderr.write(
      `${String(x.sessions).padStart(8)}  ${x.loopHeldMs.toFixed(1).padStart(10)} ms  ${x.allClosedMs.toFixed(0).padStart(26)} ms\n`,
    );
}

async function once(n: number, key: Buffer, cert: Buffer): Promise<{ sessions: number; loopHeldMs: number; allClosedMs: number }> {
  let open = 0;
  let closed = 0;
  let allClosed: () => void = () => {};
  const done = new Promise<void>((res) => (allClosed = res));
  const server = createServer({ key, cert, minVersion: 'TLSv1.3', allowHalfOpen: true }, (s) => {
    open++;
    s.on('error', () => {});
    // The least a server can do with a peer's end: no close_notify, no FIN of its own, just the close.
    s.on('end', () => s.destroy());
    s.on('close', () => {
      if (++closed === n) allClosed();
    });
  });
  server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
  await new Promise((res) => server.once('listening', res));
  const port = (server.address() as { port: number }).port;
  // One client process per 1,000 connections, as the load tool's fleet: a kill -9 of the fleet is then
  // several processes' sockets reset together.
  const procs = Math.ceil(n / 1_000);
  const children = Array.from({ length: procs }, (_, p) => {
    const share = Math.floor(n / procs) + (p < n % procs ? 1 : 0);
    return spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, 'client', String(port), String(share)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
  });
  const timeout = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), 120_000);
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((res, rej) => {
          child.once('message', () => res());
          child.once('exit', (code) => rej(new Error(`a client exited (${code}) before its connections were up`)));
        }),
    ),
  );
  clearTimeout(timeout);
  // The clients are up; the server may still be finishing its side of the last handshakes.
  for (const until = Date.now() + 30_000; open < n; await sleep(10)) {
    if (Date.now() > until) throw new Error(`the server saw ${open} of ${n} connections 30 s after the clients were up`);
  }
  await sleep(500);
  // The loop's longest hold: the largest gap between a 1 ms timer's ticks, from the kill until 500 ms
  // after the last close.
  let last = performance.now();
  let maxGap = 0;
  const tick = setInterval(() => {
    const t = performance.now();
    maxGap = Math.max(maxGap, t - last);
    last = t;
  }, 1);
  const t0 = performance.now();
  for (const c of children) c.kill('SIGKILL');
  const late = sleep(60_000, 'late' as const, { ref: false });
  if ((await Promise.race([done, late])) === 'late') throw new Error(`${closed} of ${n} connections closed 60 s after the kill`);
  const allClosedMs = performance.now() - t0;
  await sleep(500);
  clearInterval(tick);
  await new Promise<void>((res) => server.close(() => res()));
  return { sessions: n, loopHeldMs: maxGap, allClosedMs };
}
