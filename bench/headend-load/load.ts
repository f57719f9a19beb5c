// SPDX-License-Identifier: UNLICENSED
// The load tool's fleet (a child of run.ts, so it never shares the headend's or the probe's loop): N real
// agent tunnel clients (src/agent's reconnect, backoff and resumption), each with its own device
// certificate, all started at once; keepalives as the agent sends them and a trickle of broadcast frames.
// Reports to the parent over IPC every 50 ms: sessions up, attempts, attempts that hit the connect timeout,
// and its own loop's delay since the parent last asked it to start counting (a fleet late on a busy box
// times its own connections out: that storm is the fleet's, not the headend's).
// `load.ts FLEET.json FROM TO` runs devices [FROM, TO) only: a fleet of thousands is split over several
// processes, as real units answer their handshakes independently (one process's loop answers them in
// bunches, and past ~4,000 its own delays made its sessions flap).
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { silentLogger } from '../../src/shared/log.js';
import { createTunnelClient, type TunnelClient } from '../../src/agent/adapters/tunnel-client.js';

interface Fleet {
  port: number;
  caPem: string;
  keyPem: string;
  devices: { serial: string; cert: string }[];
  bcastPerS: number;
  keepaliveMs: number;
  connectTimeoutMs: number;
}

const fleet = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as Fleet;
let up = 0;
let attempts = 0;
let timeouts = 0;
let refusedPreTls = 0;
let rxFrames = 0;
const clients: TunnelClient[] = [];
const url = new URL(`tls://127.0.0.1:${fleet.port}`);
const from = Number(process.argv[3] ?? 0);
const to = Number(process.argv[4] ?? fleet.devices.length);

fleet.devices.forEach((d, i) => {
  if (i < from || i >= to) return;
  const c = createTunnelClient({
    headends: [url],
    getIdentity: () => Promise.resolve({ key: fleet.keyPem, cert: d.cert, ca: fleet.caPem }),
    hello: { agentVersion: 'load-0', site: d.serial, capabilities: [] },
    keepaliveMs: fleet.keepaliveMs,
    deadAfterMs: fleet.keepaliveMs * 3,
    // The agent's own settings (src/agent/main.ts): full jitter from 250 ms.
    backoff: { initialMs: 250, maxMs: 30_000, jitter: 1 },
    sendQueueFrames: 64,
    connectTimeoutMs: fleet.connectTimeoutMs,
    log: silentLogger,
    // One loopback address per unit, as a fleet has (the headend caps connections per address).
    localAddress: `127.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
  });
  let wasUp = false;
  c.onStateChange((state, info) => {
    if (state === 'connecting') attempts++;
    if (state === 'up') {
      up++;
      wasUp = true;
    } else if (wasUp) {
      up--;
      wasUp = false;
    }
    if (state === 'backoff' && info.reason === 'connect-timeout') timeouts++;
    if (state === 'backoff' && info.reason !== undefined && /ECONNRESET|connection closed|socket hang up/.test(info.reason))
      refusedPreTls++;
  });
  c.onFrames((f) => (rxFrames += f.length));
  clients.push(c);
});
for (const c of clients) c.start();

// A broadcast ARP-sized frame from a random session that is up, bcastPerS of them a second in total.
const frame = Buffer.alloc(60);
frame.fill(0xff, 0, 6);
frame.writeUInt16BE(0x0806, 12);
let carry = 0;
const bcast = setInterval(() => {
  carry += fleet.bcastPerS / 10;
  for (let i = 0; i < 100 && carry >= 1; i++, carry--) {
    const c = clients[Math.floor(Math.random() * clients.length)];
    if (c?.state === 'up') {
      frame.writeUInt32BE(Math.floor(Math.random() * 0xffffffff), 6);
      c.sendFrames([Buffer.from(frame)]);
    }
  }
}, 100);
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
process.on('message', (m) => {
  if ((m as { resetLoop?: boolean }).resetLoop) loop.reset();
});
const report = setInterval(() => {
  const loopP99Ms = loop.count > 0 ? loop.percentile(99) / 1e6 : 0;
  const loopMaxMs = loop.count > 0 ? loop.max / 1e6 : 0;
  process.send?.({ up, attempts, timeouts, refusedPreTls, rxFrames, loopP99Ms, loopMaxMs, at: Date.now() });
}, 50);
process.on('disconnect', () => {
  clearInterval(bcast);
  clearInterval(report);
  process.exit(0);
});
