// SPDX-License-Identifier: UNLICENSED
// Tunnel protocol versions mid-rollout (docs/tunnel-protocol.md, "Versions"): the agent offers ALPN
// connector-l2/2 then /1, the headend accepts both and picks the framing per connection, and
// `maxProtocol` rolls either side back to v1. Every pairing is checked with frames both ways through a
// fake VTEP: v2 <-> v2, a v2 agent against a headend held at 1, an agent held at 1 against a v2 headend,
// and the real code of commit 74b5e1d (the last v1-only release, built from git history) against this
// one in both directions.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../../src/shared/log.js';
import { writeVxlanHeader } from '../../../src/shared/l2/vxlan.js';
import { parseHeadendConfig } from '../../../src/headend/core/config.js';
import { startHeadend } from '../../../src/headend/main.js';
import { createTunnelClient, type TunnelClient } from '../../../src/agent/adapters/tunnel-client.js';
import { REPO, headendConfigDoc, registryDoc, testFrame, writeJson } from './adapters/fixtures.js';
import { createTestPki, type TestPki } from '../../helpers/pki.js';
import { skipOrFail } from '../../helpers/skip.js';
import { tempDir, type TempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

const OLD_COMMIT = '74b5e1d';
const SITE_MAC = '02:00:00:00:00:01';
const DC_MAC = '02:00:00:00:00:99';

interface Vtep {
  port: number;
  got: Buffer[];
  send(frame: Buffer, headendPort: number): void;
}

async function fakeVtep(t: TestContext): Promise<Vtep> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.2', () => r()));
  t.after(() => sock.close());
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m.subarray(8)));
  return {
    port: (sock.address() as AddressInfo).port,
    got,
    send(frame, headendPort) {
      const pkt = Buffer.alloc(8 + frame.length);
      writeVxlanHeader(pkt, 0, 100);
      frame.copy(pkt, 8);
      sock.send(pkt, headendPort, '127.0.0.1');
    },
  };
}

interface Env {
  d: TempDir;
  pki: TestPki;
  vtep: Vtep;
  configDoc: Record<string, unknown>;
}

async function env(t: TestContext): Promise<Env> {
  const d = tempDir(t, 'ck-versions-', true);
  const pki = await createTestPki(d.dir, { clients: ['A-1'] });
  const vtep = await fakeVtep(t);
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100, vteps: ['127.0.0.2'] } }, { 'A-1': 'acme' }));
  return { d, pki, vtep, configDoc: headendConfigDoc(d, pki, { vtepPort: vtep.port, metricsPort: null }) };
}

async function headend(t: TestContext, e: Env, maxProtocol?: 1 | 2): Promise<{ tunnelPort: number; vxlanPort: number }> {
  const doc = maxProtocol === undefined ? e.configDoc : { ...e.configDoc, tunnel: { maxProtocol } };
  const h = await startHeadend(parseHeadendConfig(doc, e.d.dir), { log: silentLogger, registryPollMs: 0 });
  t.after(() => h.close());
  return { tunnelPort: h.tunnelAddress.port, vxlanPort: h.vxlanAddress.port };
}

function agent(
  t: TestContext,
  e: Env,
  port: number,
  o: { maxProtocol?: 1 | 2; datagram?: boolean } = {},
): { c: TunnelClient; got: Buffer[] } {
  const id = e.pki.identity('A-1');
  const c = createTunnelClient({
    headends: [new URL(`tls://127.0.0.1:${port}`)],
    getIdentity: () => Promise.resolve({ key: id.key, cert: id.cert, ca: e.pki.dcCa.pem }),
    hello: { agentVersion: 'test', site: 'a', capabilities: ['l2'] },
    keepaliveMs: 1_000,
    deadAfterMs: 5_000,
    backoff: { initialMs: 50, maxMs: 500, jitter: 1 },
    sendQueueFrames: 64,
    random: () => 0.1,
    log: silentLogger,
    ...(o.maxProtocol !== undefined ? { maxProtocol: o.maxProtocol } : {}),
    ...(o.datagram ? { datagram: { enabled: true } } : {}),
  });
  const got: Buffer[] = [];
  c.onFrames((b) => {
    for (const f of b) got.push(Buffer.from(f));
  });
  t.after(() => c.close());
  c.start();
  return { c, got };
}

const tagged = (frames: readonly Buffer[], tag: string): boolean => frames.some((f) => f.includes(Buffer.from(tag)));

/** A frame from the site reaches the VTEP, and the VTEP's answer (to the MAC it taught) reaches the site. */
async function roundTrip(e: Env, vxlanPort: number, send: (f: Buffer) => void, got: () => readonly Buffer[], tag: string): Promise<void> {
  await waitFor(
    `the site's ${tag} frame at the VTEP`,
    5_000,
    () => {
      send(testFrame(SITE_MAC, 'ff:ff:ff:ff:ff:ff', `up-${tag}`));
      return tagged(e.vtep.got, `up-${tag}`);
    },
    100,
  );
  await waitFor(
    `the DC's ${tag} frame at the site`,
    5_000,
    () => {
      e.vtep.send(testFrame(DC_MAC, SITE_MAC, `down-${tag}`), vxlanPort);
      return tagged(got(), `down-${tag}`);
    },
    100,
  );
}

for (const [name, agentMax, headendMax, version] of [
  ['a v2 agent and a v2 headend speak version 2', undefined, undefined, 2],
  ['a v2 agent falls back to version 1 with a headend held at maxProtocol 1', undefined, 1, 1],
  ['an agent held at maxProtocol 1 is served version 1 by a v2 headend', 1, undefined, 1],
] as const) {
  test(name, async (t) => {
    const e = await env(t);
    const h = await headend(t, e, headendMax);
    const { c, got } = agent(t, e, h.tunnelPort, { ...(agentMax !== undefined ? { maxProtocol: agentMax } : {}) });
    await waitFor('up', 10_000, () => c.status().state === 'up');
    assert.deepEqual(c.status().protocol, { version, offload: false });
    await roundTrip(
      e,
      h.vxlanPort,
      (f) => c.sendFrames([f]),
      () => got,
      `v${version}`,
    );
    assert.deepEqual(c.status().counters.decodeDrops, {});
  });
}

/** The source of `commit` in a directory of its own that resolves this checkout's node_modules; null without history. */
function oldCode(d: TempDir, commit = OLD_COMMIT): string | null {
  const dir = d.path(`old-${commit}`);
  const archive = spawnSync('sh', [
    '-c',
    `mkdir -p ${dir} && git -C ${REPO} archive ${commit} src package.json tsconfig.json | tar -x -C ${dir}`,
  ]);
  if (archive.status !== 0) return null;
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

/** Runs a TypeScript script with tsx from `cwd`; resolves its stdout JSON lines as they come. */
function runTs(t: TestContext, cwd: string, args: string[]): { lines: Record<string, unknown>[]; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => void child.kill('SIGKILL'));
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    buf += s;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        // not ours
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => void (err += s));
  return { lines, stderr: () => err.slice(-3000) };
}

async function withStderr<T>(stderr: () => string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw new Error(`${(e as Error).message}; stderr:\n${stderr()}`);
  }
}

/** The old CLI's headend on `config`; its tunnel and VXLAN ports once it listens (it logs JSON lines on stderr). */
async function oldHeadendListening(t: TestContext, old: string, config: string): Promise<{ tunnel: number; vxlan: number }> {
  const p = runTs(t, old, [join(old, 'src/cli/connector.ts'), 'headend', '--config', config]);
  const ports = { tunnel: 0, vxlan: 0 };
  await withStderr(
    p.stderr,
    waitFor('the old headend listening', 20_000, () => {
      const m = /"tunnel":"[^"]*:(\d+)".*"vxlan":"[^"]*:(\d+)"/.exec(p.stderr());
      if (m) [ports.tunnel, ports.vxlan] = [Number(m[1]), Number(m[2])];
      return m !== null;
    }),
  );
  return ports;
}

/** An agent script run from the old code's directory against headend `h` as unit A-1, once one of its lines says `what`. */
async function oldAgentUntil(
  t: TestContext,
  e: Env,
  old: string,
  h: { tunnelPort: number },
  script: string,
  what: string,
  ready: (l: Record<string, unknown>) => boolean,
): Promise<ReturnType<typeof runTs>> {
  const id = e.pki.identity('A-1');
  const file = `agent-${Math.random().toString(36).slice(2)}.ts`;
  writeFileSync(join(old, file), script);
  const p = runTs(t, old, [file, String(h.tunnelPort), id.key, id.cert, e.pki.dcCa.pem]);
  await withStderr(
    p.stderr,
    waitFor(`the old agent ${what}`, 20_000, () => p.lines.some(ready)),
  );
  return p;
}

const OLD_AGENT = `
import { createTunnelClient } from './src/agent/adapters/tunnel-client.ts';
import { silentLogger } from './src/shared/log.ts';
const [port, key, cert, ca] = process.argv.slice(2);
const c = createTunnelClient({
  headends: [new URL('tls://127.0.0.1:' + port)],
  getIdentity: () => Promise.resolve({ key, cert, ca }),
  hello: { agentVersion: 'old', site: 'a', capabilities: ['l2'] },
  keepaliveMs: 1000, deadAfterMs: 5000, backoff: { initialMs: 50, maxMs: 500, jitter: 1 },
  sendQueueFrames: 64, random: () => 0.1, log: silentLogger,
});
c.onFrames((b) => { for (const f of b) console.log(JSON.stringify({ frame: f.toString('hex') })); });
c.onStateChange((s) => console.log(JSON.stringify({ state: s })));
c.start();
setInterval(() => {
  if (c.state !== 'up') return;
  const f = Buffer.alloc(64);
  Buffer.from('020000000001', 'hex').copy(f, 6);
  f.fill(0xff, 0, 6);
  f.writeUInt16BE(0x88b6, 12);
  Buffer.from('up-old-agent').copy(f, 14);
  c.sendFrames([f]);
}, 100);
`;

test(`the real v1 code of commit ${OLD_COMMIT} interoperates with this code in both directions`, async (t) => {
  const started = Date.now();
  const e = await env(t);
  const old = oldCode(e.d);
  if (old === null) {
    skipOrFail(t, `git history with commit ${OLD_COMMIT}`);
    return;
  }
  // An old agent against this headend.
  const h = await headend(t, e);
  const oldAgent = await oldAgentUntil(t, e, old, h, OLD_AGENT, 'up', (l) => l['state'] === 'up');
  await waitFor("the old agent's frame at the VTEP", 5_000, () => tagged(e.vtep.got, 'up-old-agent'));
  const down = Buffer.from('down-old-agent').toString('hex');
  await waitFor(
    'the VTEP frame at the old agent',
    5_000,
    () => {
      e.vtep.send(testFrame(DC_MAC, SITE_MAC, 'down-old-agent'), h.vxlanPort);
      return oldAgent.lines.some((l) => String(l['frame']).includes(down));
    },
    100,
  );

  // This agent against an old headend (the old CLI; its config has no `tunnel` section).
  const e2 = await env(t);
  const file = e2.d.path('headend.json');
  writeJson(file, e2.configDoc);
  const ports = await oldHeadendListening(t, old, file);
  const { c, got } = agent(t, e2, ports.tunnel);
  await waitFor('up against the old headend', 10_000, () => c.status().state === 'up');
  assert.deepEqual(c.status().protocol, { version: 1, offload: false });
  await roundTrip(
    e2,
    ports.vxlan,
    (f) => c.sendFrames([f]),
    () => got,
    'old-headend',
  );
  t.diagnostic(`old-code interop took ${Date.now() - started} ms (git archive, two tsx processes)`);
});

/** The last commit before BUNDLE datagrams (dg-bundle): its agent and headend know only one frame per datagram. */
const DG_OLD_COMMIT = '8fa8eab';

const OLD_DG_AGENT = `
import { createTunnelClient } from './src/agent/adapters/tunnel-client.ts';
import { silentLogger } from './src/shared/log.ts';
const [port, key, cert, ca] = process.argv.slice(2);
const c = createTunnelClient({
  headends: [new URL('tls://127.0.0.1:' + port)],
  getIdentity: () => Promise.resolve({ key, cert, ca }),
  hello: { agentVersion: 'old', site: 'a', capabilities: ['l2'] },
  keepaliveMs: 1000, deadAfterMs: 5000, backoff: { initialMs: 50, maxMs: 500, jitter: 1 },
  sendQueueFrames: 64, random: () => 0.1, log: silentLogger, datagram: { enabled: true },
});
c.onFrames((b) => { for (const f of b) console.log(JSON.stringify({ frame: f.toString('hex') })); });
c.start();
setInterval(() => console.log(JSON.stringify({ transport: c.status().transport })), 200);
`;

/** `n` small frames whose payloads are `prefix-00`, `prefix-01`, ... */
const burst = (prefix: string, n: number, src: string, dst: string): { tags: string[]; frames: Buffer[] } => {
  const tags = Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);
  return { tags, frames: tags.map((tag) => testFrame(src, dst, tag)) };
};

/** Every tag, once each, in order, among `frames`. */
const allInOrder = (frames: readonly Buffer[], tags: readonly string[]): boolean => {
  const seen = frames.map((f) => tags.findIndex((w) => f.includes(Buffer.from(w)))).filter((i) => i >= 0);
  return seen.length === tags.length && seen.every((v, i) => v === i);
};

test(`the datagram channel of commit ${DG_OLD_COMMIT} (no dg-bundle) and this code: bursts of small frames cross both ways, none lost, none bundled toward the old end`, async (t) => {
  const e = await env(t);
  const old = oldCode(e.d, DG_OLD_COMMIT);
  if (old === null) {
    skipOrFail(t, `git history with commit ${DG_OLD_COMMIT}`);
    return;
  }
  // An old agent against this headend: the headend's bursts toward it are frame by frame.
  const h = await headend(t, e);
  const oldAgent = await oldAgentUntil(t, e, old, h, OLD_DG_AGENT, 'on datagrams', (l) => l['transport'] === 'datagram');
  // Its MAC, learned by the headend, so the bursts below are unicast to it.
  await waitFor(
    'the old agent known to the headend',
    5_000,
    () => {
      e.vtep.send(testFrame(DC_MAC, SITE_MAC, 'hello-old'), h.vxlanPort);
      return oldAgent.lines.some((l) => String(l['frame']).includes(Buffer.from('hello-old').toString('hex')));
    },
    100,
  );
  for (let k = 0; k < 5; k++) {
    const b = burst(`to-old-${k}`, 30, DC_MAC, SITE_MAC);
    const at = oldAgent.lines.length;
    for (const f of b.frames) e.vtep.send(f, h.vxlanPort);
    const got = (): Buffer[] =>
      oldAgent.lines.slice(at).flatMap((l) => (typeof l['frame'] === 'string' ? [Buffer.from(l['frame'], 'hex')] : []));
    await waitFor(`burst ${k}: all 30 at the old agent, in order`, 5_000, () => allInOrder(got(), b.tags));
  }

  // This agent against an old headend: it offers no dg-bundle, so this agent sends none.
  const e2 = await env(t);
  const file = e2.d.path('headend.json');
  writeJson(file, e2.configDoc);
  const ports = await oldHeadendListening(t, old, file);
  const { c } = agent(t, e2, ports.tunnel, { datagram: true });
  await waitFor('on datagrams to the old headend', 10_000, () => c.status().transport === 'datagram');
  for (let k = 0; k < 5; k++) {
    const b = burst(`to-old-headend-${k}`, 30, SITE_MAC, 'ff:ff:ff:ff:ff:ff');
    const at = e2.vtep.got.length;
    c.sendFrames(b.frames);
    await waitFor(`burst ${k}: all 30 at the VTEP behind the old headend, in order`, 5_000, () =>
      allInOrder(e2.vtep.got.slice(at), b.tags),
    );
  }
  assert.equal(c.status().datagram?.bundles, 0, 'no bundle toward a headend that did not offer dg-bundle');
  assert.equal(c.status().transport, 'datagram');
});
