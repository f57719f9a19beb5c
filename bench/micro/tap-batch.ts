// SPDX-License-Identifier: UNLICENSED
// TAP addon throughput: how many frames per second reach JS, and how many JS callbacks they cost, for a
// UDP burst the kernel sends out of the TAP; maxBatch 1 (one callback per frame, the shape of a stream
// wrapper) is the baseline in the same run. Also times writeFrames() in batches of 64.
// Root only (network namespace). Usage:
//   node --import tsx bench/micro/tap-batch.ts [--frames 200000] [--size 1000]
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { performance } from 'node:perf_hooks';
import { openTap } from '../../src/agent/adapters/tap.js';
import { removeNetnsWithPrefix, uniquePrefix } from '../../src/lab/adapters/netns.js';
import { silentLogger } from '../../src/shared/log.js';

const execFileP = promisify(execFile);

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`);
  return v;
}

const FRAMES = arg('frames', 200_000);
const SIZE = arg('size', 1000);
const ip = (...a: string[]): void => void execFileSync('ip', a);

interface ReadResult {
  maxBatch: number;
  sent: number;
  read: number;
  callbacks: number;
  framesPerCallback: number;
  callbacksPerFrame: number;
  framesPerSecond: number;
  txDroppedByKernel: number;
  seconds: number;
}

// The sender runs inside the namespace as its own process, so it competes for CPU like a LAN would not;
// the numbers are relative (same machine, same run), not absolute.
const SENDER = `
const dgram = await import('node:dgram');
const s = dgram.createSocket('udp4');
const buf = Buffer.alloc(Number(process.env.SIZE), 0x5a);
const total = Number(process.env.FRAMES);
let sent = 0;
const t0 = performance.now();
await new Promise((resolve) => {
  const pump = () => {
    for (let i = 0; i < 256 && sent < total; i++, sent++) s.send(buf, 9, '10.99.0.2');
    if (sent < total) setImmediate(pump); else resolve();
  };
  pump();
});
await new Promise((r) => s.close(r));
process.stdout.write(JSON.stringify({ sent, ms: performance.now() - t0 }));
`;

async function readBurst(prefix: string, maxBatch: number): Promise<ReadResult> {
  const ns = `${prefix}-r${maxBatch}`;
  const name = `${prefix}r${maxBatch}`.slice(0, 15);
  ip('netns', 'add', ns);
  const tap = openTap({ name, maxBatch, log: silentLogger });
  try {
    ip('link', 'set', name, 'netns', ns);
    ip('-n', ns, 'addr', 'add', '10.99.0.1/24', 'dev', name);
    ip('-n', ns, 'link', 'set', name, 'up');
    ip('-n', ns, 'neigh', 'replace', '10.99.0.2', 'lladdr', '02:99:00:00:00:02', 'dev', name, 'nud', 'permanent');
    let read = 0;
    let callbacks = 0;
    let first = 0;
    let last = 0;
    tap.onFrames((frames) => {
      const now = performance.now();
      if (read === 0) first = now;
      last = now;
      read += frames.length;
      callbacks++;
    });
    const out = await execFileP('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', SENDER], {
      env: { ...process.env, FRAMES: String(FRAMES), SIZE: String(SIZE) },
    });
    const sent = (JSON.parse(out.stdout) as { sent: number }).sent;
    // Drain: wait until no frame arrived for 200 ms.
    for (let quiet = read; ; quiet = read) {
      await new Promise((r) => setTimeout(r, 200));
      if (read === quiet) break;
    }
    const link = JSON.parse(execFileSync('ip', ['-n', ns, '-s', '-j', 'link', 'show', name], { encoding: 'utf8' })) as {
      stats64: { tx: { dropped: number } };
    }[];
    const seconds = (last - first) / 1000;
    return {
      maxBatch,
      sent,
      read,
      callbacks,
      framesPerCallback: read / Math.max(callbacks, 1),
      callbacksPerFrame: callbacks / Math.max(read, 1),
      framesPerSecond: read / Math.max(seconds, 1e-9),
      txDroppedByKernel: link[0]?.stats64.tx.dropped ?? -1,
      seconds,
    };
  } finally {
    await tap.close();
    ip('netns', 'del', ns);
  }
}

async function writeBurst(prefix: string): Promise<{ frames: number; accepted: number; framesPerSecond: number }> {
  const ns = `${prefix}-w`;
  const name = `${prefix}w`;
  ip('netns', 'add', ns);
  const tap = openTap({ name, maxBatch: 64, log: silentLogger });
  try {
    ip('link', 'set', name, 'netns', ns);
    ip('-n', ns, 'link', 'set', name, 'up');
    // Frames for another host on the segment: the kernel takes each one and drops it after eth_type_trans,
    // so this times the write path itself.
    const frame = Buffer.alloc(SIZE + 42, 0x5a);
    Buffer.from('02990000000302990000000208004500', 'hex').copy(frame);
    const batch = Array.from({ length: 64 }, () => frame);
    let accepted = 0;
    const t0 = performance.now();
    for (let sent = 0; sent < FRAMES; sent += batch.length) accepted += tap.writeFrames(batch);
    const seconds = (performance.now() - t0) / 1000;
    const frames = Math.ceil(FRAMES / 64) * 64;
    return { frames, accepted, framesPerSecond: accepted / seconds };
  } finally {
    await tap.close();
    ip('netns', 'del', ns);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('tap-batch needs root (network namespaces, TUNSETIFF)');
  const prefix = uniquePrefix('ckb');
  process.once('exit', () => removeNetnsWithPrefix(prefix));
  const reads = [await readBurst(prefix, 1), await readBurst(prefix, 64)];
  const write = await writeBurst(prefix);
  const f = (n: number, d = 0): string => n.toFixed(d).padStart(10);
  console.log(`tap-batch: ${FRAMES} UDP frames of ${SIZE} B payload, node ${process.version}`);
  console.log('  maxBatch      sent      read  callbacks  frames/cb     cb/frame   frames/s  kernel-drop');
  for (const r of reads) {
    console.log(
      `${f(r.maxBatch)}${f(r.sent)}${f(r.read)} ${f(r.callbacks)} ${f(r.framesPerCallback, 1)}   ${f(r.callbacksPerFrame, 4)} ${f(r.framesPerSecond)}   ${f(r.txDroppedByKernel)}`,
    );
  }
  console.log(`  writeFrames x64: ${write.accepted}/${write.frames} accepted, ${write.framesPerSecond.toFixed(0)} frames/s`);
  console.log(JSON.stringify({ bench: 'tap-batch', frames: FRAMES, size: SIZE, node: process.version, reads, write }));
}

await main();
