// SPDX-License-Identifier: UNLICENSED
// The headend over real TLS on 127.0.0.1 with fake VTEPs (UDP sockets on 127.0.0.2/127.0.0.3): admission
// and refusal with audit lines, VNI from the registry, tenant isolation with identical MACs, split
// horizon, garbage and oversize records, registry reload, metrics, and the audit CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';
import { silentLogger } from '../../../src/shared/log.js';
import { parseHeadendConfig } from '../../../src/headend/core/config.js';
import { startHeadend, type Headend } from '../../../src/headend/main.js';
import { writeVxlanHeader } from '../../../src/shared/l2/vxlan.js';
import { encodeRecord } from '../../../src/shared/tunnel/records.js';
import { CLI, REPO, headendConfigDoc, rawTunnel, registryDoc, spawnHeadend, testFrame, writeJson } from './adapters/fixtures.js';
import { createTestPki, type TestPki } from '../../helpers/pki.js';
import { tempDir, type TempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';
import { verifyAuditFile } from '../../../src/shared/audit/files.js';

interface Vtep {
  sock: Socket;
  port: number;
  got: { vni: number; frame: Buffer }[];
  send(vni: number, frame: Buffer, headendPort: number): void;
}

async function fakeVtep(t: { after(fn: () => void): void }, address: string, port = 0): Promise<Vtep> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(port, address, () => r()));
  t.after(() => sock.close());
  const got: { vni: number; frame: Buffer }[] = [];
  sock.on('message', (m) => got.push({ vni: m.readUIntBE(4, 3), frame: m.subarray(8) }));
  return {
    sock,
    port: (sock.address() as AddressInfo).port,
    got,
    send(vni, frame, headendPort) {
      const pkt = Buffer.alloc(8 + frame.length);
      writeVxlanHeader(pkt, 0, vni);
      frame.copy(pkt, 8);
      sock.send(pkt, headendPort, '127.0.0.1');
    },
  };
}

interface Env {
  d: TempDir;
  pki: TestPki;
  headend: Headend;
  vtepA: Vtep;
  vtepB: Vtep;
}

/** Tenants acme (VNI 100, VTEP 127.0.0.2) and globex (VNI 200, VTEP 127.0.0.3), same VTEP UDP port. */
async function setup(
  t: { after(fn: () => void | Promise<void>): void },
  opts: { multiSite?: boolean; deny?: string[] } = {},
): Promise<Env> {
  const d = tempDir(t, 'ck-he-', true);
  const pki = await createTestPki(d.dir);
  const vtepA = await fakeVtep(t, '127.0.0.2');
  const vtepB = await fakeVtep(t, '127.0.0.3', vtepA.port);
  writeJson(
    d.path('registry.json'),
    registryDoc(
      {
        acme: { vni: 100, vteps: ['127.0.0.2'], multiSite: opts.multiSite ?? false },
        globex: { vni: 200, vteps: ['127.0.0.3'], vtepPathMtu: 1500 },
      },
      { 'A-1': 'acme', 'A-2': 'acme', 'G-1': 'globex', 'U-1': { state: 'allowed' }, 'R-1': { state: 'revoked' }, 'D-1': 'acme' },
      opts.deny ?? ['D-1'],
    ),
  );
  const config = parseHeadendConfig(headendConfigDoc(d, pki, { vtepPort: vtepA.port }), d.dir);
  const headend = await startHeadend(config, { log: silentLogger, registryPollMs: 0 });
  t.after(async () => {
    await headend.close();
    d.remove();
  });
  return { d, pki, headend, vtepA, vtepB };
}

function auditLines(d: TempDir): Record<string, unknown>[] {
  return readFileSync(d.path('audit.jsonl'), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('hello gets the registry VNI; a device-sent VNI is ignored; frames flow both ways', async (t) => {
  const { pki, headend, vtepA } = await setup(t);
  const id = await pki.client('A-1');
  const c = await rawTunnel(headend.tunnelAddress.port, id, pki.dcCa.pem);
  t.after(() => c.socket.destroy());
  const ack = await c.hello();
  assert.equal(ack.type, 'hello-ack');
  assert.equal(ack.type === 'hello-ack' && ack.vni, 100);
  // The device claims VNI 200 (another tenant's): the headend uses 100 from the registry.
  c.send(200, testFrame('02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff', 'from-site'));
  await waitFor('frame at VTEP A', 3_000, () => vtepA.got.length === 1);
  assert.equal(vtepA.got[0]?.vni, 100);
  assert.ok(vtepA.got[0]?.frame.includes(Buffer.from('from-site')));
  vtepA.send(100, testFrame('02:00:00:00:00:99', '02:00:00:00:00:01', 'from-dc'), headend.vxlanAddress.port);
  const back = await waitFor('the frame from the DC at the device', 5_000, () => c.frames[0]);
  assert.equal(back.vni, 100);
  assert.ok(back.frame.includes(Buffer.from('from-dc')));
});

test('unknown, unclaimed, revoked and denylisted serials are refused with a reason and an audit line', async (t) => {
  const { d, pki, headend } = await setup(t);
  for (const [serial, reason] of [
    ['X-9', 'unknown-serial'],
    ['U-1', 'unclaimed'],
    ['R-1', 'revoked'],
    ['D-1', 'denylisted'],
  ] as const) {
    const c = await rawTunnel(headend.tunnelAddress.port, await pki.client(serial), pki.dcCa.pem);
    await c.closed;
    const err = c.control.find((m) => m.type === 'error');
    assert.equal(err?.type === 'error' && err.message, reason, serial);
    // Audit appends are group-committed: the line is on disk within a batch, not at the refusal.
    const line = await waitFor(`the refusal of ${serial} in the audit log`, 3_000, () =>
      auditLines(d).find((l) => l['event'] === 'refused' && l['serial'] === serial),
    );
    assert.equal(line['reason'], reason);
    assert.match(String(line?.['fingerprint']), /^[0-9a-f]{64}$/);
    assert.match(String(line?.['remote']), /^127\.0\.0\.1:\d+$/);
  }
  assert.match(headend.renderMetrics(), /connector_headend_refusals_total\{reason="denylisted"\} 1/);
});

test("two tenants with identical MACs see none of each other's frames", async (t) => {
  const { pki, headend, vtepA, vtepB } = await setup(t);
  const a = await rawTunnel(headend.tunnelAddress.port, await pki.client('A-1'), pki.dcCa.pem);
  const g = await rawTunnel(headend.tunnelAddress.port, await pki.client('G-1'), pki.dcCa.pem);
  t.after(() => {
    a.socket.destroy();
    g.socket.destroy();
  });
  await a.hello();
  await g.hello();
  const mac = '02:00:00:00:00:01';
  const vm = '02:00:00:00:00:05';
  for (let i = 0; i < 5; i++) {
    a.send(100, testFrame(mac, 'ff:ff:ff:ff:ff:ff', `acme-bcast-${i}`));
    g.send(200, testFrame(mac, 'ff:ff:ff:ff:ff:ff', `globex-bcast-${i}`));
  }
  await waitFor('broadcasts at both VTEPs', 3_000, () => vtepA.got.length === 5 && vtepB.got.length === 5);
  // Each VM answers the (same) MAC; learned entries are per segment, so each reply reaches only its tenant.
  vtepA.send(100, testFrame(vm, mac, 'acme-reply'), headend.vxlanAddress.port);
  vtepB.send(200, testFrame(vm, mac, 'globex-reply'), headend.vxlanAddress.port);
  vtepA.send(100, testFrame(vm, 'ff:ff:ff:ff:ff:ff', 'acme-dc-bcast'), headend.vxlanAddress.port);
  await waitFor('replies', 3_000, () => a.frames.length === 2 && g.frames.length === 1);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(vtepA.got.every((p) => p.vni === 100 && p.frame.includes(Buffer.from('acme'))));
  assert.ok(vtepB.got.every((p) => p.vni === 200 && p.frame.includes(Buffer.from('globex'))));
  assert.ok(a.frames.every((f) => f.frame.includes(Buffer.from('acme'))));
  assert.ok(g.frames.every((f) => f.frame.includes(Buffer.from('globex'))));
  assert.equal(g.frames.length, 1);
  // A VTEP sending another tenant's VNI is dropped, not delivered.
  vtepB.send(100, testFrame(vm, mac, 'spoof'), headend.vxlanAddress.port);
  vtepA.send(4242, testFrame(vm, mac, 'unknown-vni'), headend.vxlanAddress.port);
  await waitFor(
    'drop counters',
    3_000,
    () => /reason="vtep-not-in-segment"\} 1/.test(headend.renderMetrics()) && /reason="unknown-vni"\} 1/.test(headend.renderMetrics()),
  );
  assert.equal(a.frames.length, 2);
});

test('split horizon: sites of one segment reach each other only with multiSite', async (t) => {
  for (const multiSite of [false, true]) {
    await t.test(`multiSite ${multiSite}`, async (t2) => {
      const { pki, headend, vtepA } = await setup(t2, { multiSite });
      const s1 = await rawTunnel(headend.tunnelAddress.port, await pki.client('A-1'), pki.dcCa.pem);
      const s2 = await rawTunnel(headend.tunnelAddress.port, await pki.client('A-2'), pki.dcCa.pem);
      t2.after(() => {
        s1.socket.destroy();
        s2.socket.destroy();
      });
      await s1.hello();
      await s2.hello();
      s1.send(100, testFrame('02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff', 'site1'));
      await waitFor('frame at VTEP', 3_000, () => vtepA.got.length === 1);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(s2.frames.length, multiSite ? 1 : 0);
      if (!multiSite) assert.equal(s1.frames.length, 0);
    });
  }
});

test('garbage and an oversize record close only the offending session, counted', async (t) => {
  const { pki, headend, vtepA } = await setup(t);
  const good = await rawTunnel(headend.tunnelAddress.port, await pki.client('A-1'), pki.dcCa.pem);
  const bad = await rawTunnel(headend.tunnelAddress.port, await pki.client('A-2'), pki.dcCa.pem);
  const bad2 = await rawTunnel(headend.tunnelAddress.port, await pki.client('G-1'), pki.dcCa.pem);
  t.after(() => {
    good.socket.destroy();
    bad.socket.destroy();
    bad2.socket.destroy();
  });
  await good.hello();
  await bad.hello();
  await bad2.hello();
  // Undersize and no-I-flag records are skipped (stream stays in sync), then an oversize length poisons it.
  bad.socket.write(Buffer.from([0x00, 0x03, 1, 2, 3]));
  const noI = encodeRecord(100, testFrame('02:00:00:00:00:02', 'ff:ff:ff:ff:ff:ff', 'x'));
  noI[2] = 0;
  bad.socket.write(noI);
  bad.socket.write(Buffer.from([0xff, 0xff, ...Buffer.alloc(64, 0xaa)]));
  bad2.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  await bad.closed;
  await bad2.closed;
  good.send(100, testFrame('02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff', 'still-fine'));
  await waitFor('good session frame', 3_000, () => vtepA.got.some((p) => p.frame.includes(Buffer.from('still-fine'))));
  assert.equal(good.socket.destroyed, false);
  const m = headend.renderMetrics();
  assert.match(m, /connector_headend_drops_total\{reason="record-undersize"\} 1/);
  assert.match(m, /connector_headend_drops_total\{reason="record-no-i-flag"\} 1/);
  assert.match(m, /connector_headend_drops_total\{reason="record-oversize"\} 2/);
  assert.match(m, /connector_headend_session_closes_total\{reason="record-oversize"\} 2/);
  assert.equal(headend.sessions().length, 1);
});

test('registry reload (SIGHUP path) disconnects a newly denylisted device with an audit line', async (t) => {
  const { d, pki, headend } = await setup(t);
  const c = await rawTunnel(headend.tunnelAddress.port, await pki.client('A-1'), pki.dcCa.pem);
  t.after(() => c.socket.destroy());
  await c.hello();
  const reg = JSON.parse(readFileSync(d.path('registry.json'), 'utf8')) as { denylist: string[] };
  reg.denylist.push('A-1');
  writeFileSync(d.path('registry.json'), JSON.stringify(reg));
  await headend.reload();
  await c.closed;
  const bye = c.control.find((m) => m.type === 'bye');
  assert.equal(bye?.type === 'bye' && bye.reason, 'registry:denylisted');
  const disc = await waitFor('the disconnect in the audit log', 3_000, () =>
    auditLines(d).find((l) => l['event'] === 'disconnect' && l['serial'] === 'A-1'),
  );
  assert.equal(disc['reason'], 'registry:denylisted');
  // A broken registry file keeps the last good one and counts the error.
  writeFileSync(d.path('registry.json'), '{ not json');
  await headend.reload();
  assert.match(headend.renderMetrics(), /registry_reloads_total\{result="error"\} 1/);
});

test('metrics endpoint serves Prometheus text with the counters and the MTU warning', async (t) => {
  const { pki, headend, vtepA } = await setup(t);
  const c = await rawTunnel(headend.tunnelAddress.port, await pki.client('A-1'), pki.dcCa.pem);
  t.after(() => c.socket.destroy());
  await c.hello();
  c.send(100, testFrame('02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff', 'm'));
  await waitFor('frame', 3_000, () => vtepA.got.length === 1);
  const port = headend.metricsAddress?.port;
  assert.ok(port);
  const { status, type, body } = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics?detail=segment' }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (b += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: b }));
    }).on('error', reject);
  });
  assert.equal(status, 200);
  assert.match(type, /^text\/plain; version=0\.0\.4/);
  assert.match(body, /# TYPE connector_headend_frames_total counter/);
  assert.match(body, /connector_headend_sessions\{segment="acme\/lan",vni="100"\} 1/);
  assert.match(body, /connector_headend_frames_total\{direction="tunnel-in",segment="acme\/lan",vni="100"\} 1/);
  assert.match(body, /connector_headend_bytes_total\{direction="vtep-out",segment="acme\/lan",vni="100"\} 60/);
  assert.match(body, /connector_headend_segment_mtu_too_small\{segment="globex\/lan",vni="200"\} 1/);
  assert.doesNotMatch(body, /connector_headend_segment_mtu_too_small\{segment="acme\/lan"/, 'no zero series');
  assert.doesNotMatch(body, /segment="globex\/lan",vni="200"\} 0/, 'no zero series for the idle segment');
  // The default view sums per tenant.
  const byTenant = headend.renderMetrics();
  assert.match(byTenant, /connector_headend_sessions\{tenant="acme"\} 1/);
  assert.doesNotMatch(byTenant, /vni="100"\}/);
  // Every non-comment line is `name{labels} value`.
  for (const line of body.trimEnd().split('\n')) {
    if (!line.startsWith('#')) assert.match(line, /^[a-z_]+(\{[^}]*\})? \d+(\.\d+)?$/, line);
  }
});

test('audit CLI: export csv/jsonl is well formed; verify passes, then fails after an edit, removal or insertion', async (t) => {
  const { d, pki, headend } = await setup(t);
  for (const serial of ['A-1', 'G-1', 'X-1']) {
    const c = await rawTunnel(headend.tunnelAddress.port, await pki.client(serial), pki.dcCa.pem);
    await c.hello();
    c.socket.destroy();
  }
  await waitFor('disconnect lines', 3_000, () => auditLines(d).filter((l) => l['event'] === 'disconnect').length === 2);
  const log = d.path('audit.jsonl');
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', CLI, 'audit', ...args], { cwd: REPO, encoding: 'utf8' });
  const csv = cli('export', '--format', 'csv', '--log', log);
  assert.equal(csv.status, 0, csv.stderr);
  const rows = csv.stdout.trimEnd().split('\r\n');
  assert.match(rows[0] ?? '', /^seq,time,event,sessionId,serial,tenant/);
  assert.equal(rows.length, 1 + auditLines(d).length);
  const jsonl = cli('export', '--format', 'jsonl', '--log', log);
  assert.equal(jsonl.status, 0);
  const recs = jsonl.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const disc = recs.find((r) => r['event'] === 'disconnect' && r['serial'] === 'A-1');
  for (const k of ['tenant', 'remote', 'fingerprint', 'bytesIn', 'bytesOut', 'framesIn', 'framesOut', 'reason', 'hash'])
    assert.ok(k in (disc ?? {}), k);
  assert.equal(cli('verify', '--log', log).status, 0);
  assert.equal(cli('export', '--format', 'xml', '--log', log).status, 2);
  const original = readFileSync(log, 'utf8');
  const lines = original.trimEnd().split('\n');
  const acmeLine = lines.findIndex((l) => l.includes('"acme"'));
  assert.ok(acmeLine > 0 && acmeLine < lines.length - 1);
  const variants = {
    edited: lines.map((l, i) => (i === acmeLine ? l.replace('"acme"', '"globex"') : l)),
    removed: lines.filter((_, i) => i !== 1),
    inserted: [...lines.slice(0, 2), lines[1] ?? '', ...lines.slice(2)],
  };
  for (const [name, v] of Object.entries(variants)) {
    writeFileSync(log, v.join('\n') + '\n');
    const r = cli('verify', '--log', log);
    assert.equal(r.status, 1, `${name}: ${r.stdout}`);
    assert.match(r.stdout, /FAILED at line \d+/);
  }
  writeFileSync(log, original);
  assert.equal(cli('verify', '--log', log).status, 0);
});

test('registry file changes are picked up without a signal', async (t) => {
  const d = tempDir(t, 'ck-he-', true);
  const pki = await createTestPki(d.dir);
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': 'acme' }));
  const headend = await startHeadend(parseHeadendConfig(headendConfigDoc(d, pki, { metricsPort: null }), d.dir), {
    log: silentLogger,
    registryPollMs: 50,
  });
  t.after(async () => {
    await headend.close();
    d.remove();
  });
  const c = await rawTunnel(headend.tunnelAddress.port, await pki.client('A-1'), pki.dcCa.pem);
  await c.hello();
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': { state: 'revoked' } }));
  await c.closed;
  assert.equal(c.control.find((m) => m.type === 'bye')?.type === 'bye', true);
});

test('connector headend reloads the registry on SIGHUP and stops on SIGTERM', async (t) => {
  const d = tempDir(t, 'ck-he-', true);
  const pki = await createTestPki(d.dir);
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': 'acme' }));
  writeJson(d.path('headend.json'), headendConfigDoc(d, pki, { metricsPort: null }));
  const h = await spawnHeadend(d.path('headend.json'));
  t.after(async () => {
    await h.kill('SIGKILL');
    d.remove();
  });
  h.child.kill('SIGHUP');
  await h.waitForLine((l) => l['msg'] === 'registry loaded' && l['why'] === 'sighup');
  await h.kill('SIGTERM');
  assert.equal(h.child.exitCode, 0);
});

test('connector headend on SIGTERM: byes sent, the audit committed and verifying, and a peer that ignores its bye left to the exit', async (t) => {
  const d = tempDir(t, 'ck-he-', true);
  const pki = await createTestPki(d.dir);
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': 'acme', 'A-2': 'acme' }));
  writeJson(d.path('headend.json'), headendConfigDoc(d, pki, { metricsPort: null }));
  const h = await spawnHeadend(d.path('headend.json'));
  t.after(async () => {
    await h.kill('SIGKILL');
    d.remove();
  });
  const a = await rawTunnel(h.tunnelPort, await pki.client('A-1'), pki.dcCa.pem);
  await a.hello();
  const b = await rawTunnel(h.tunnelPort, await pki.client('A-2'), pki.dcCa.pem);
  await b.hello();
  // A-2 stops reading: it never answers the bye, so the headend still holds its connection at the exit.
  b.socket.pause();
  let bClosed = false;
  b.socket.on('close', () => (bClosed = true));
  await h.kill('SIGTERM');
  assert.equal(h.child.exitCode, 0);
  assert.ok(h.lines.some((l) => l['msg'] === 'headend stopped'));
  await a.closed;
  assert.equal(a.control.find((m) => m.type === 'bye')?.type, 'bye', 'the reading peer got its bye');
  // The exit closed what was left: the paused peer's connection is gone too (it sees a reset or the FIN).
  b.socket.resume();
  await waitFor('the ignoring peer disconnected', 5_000, () => bClosed);
  assert.equal(b.control.find((m) => m.type === 'bye')?.type, 'bye', 'the peer that read late got its bye too');
  const v = verifyAuditFile(d.path('audit.jsonl'));
  assert.ok(v.ok, JSON.stringify(v));
  const records = readFileSync(d.path('audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const disconnects = records.filter((r) => r['event'] === 'disconnect').map((r) => String(r['serial']));
  assert.deepEqual(disconnects.sort(), ['A-1', 'A-2'], 'both sessions end in the audit log');
  assert.equal(records.at(-1)?.['event'], 'checkpoint', 'the log ends with a signed checkpoint');
});

test('a stopping headend does not wait on peers: one that ignores the bye and one stuck before TLS', async (t) => {
  const d = tempDir(t, 'ck-he-', true);
  const pki = await createTestPki(d.dir);
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': 'acme' }));
  const config = parseHeadendConfig(headendConfigDoc(d, pki, { metricsPort: null }), d.dir);
  const headend = await startHeadend(config, { log: silentLogger, registryPollMs: 0 });
  t.after(() => d.remove());
  const c = await rawTunnel(headend.tunnelAddress.port, await pki.client('A-1'), pki.dcCa.pem);
  await c.hello();
  // Stops reading: it never sees the bye or the FIN, so it never closes its side.
  c.socket.pause();
  // Connected but silent: the TLS handshake would wait for it until helloTimeoutMs (5 s here).
  const stuck = connect(headend.tunnelAddress.port, '127.0.0.1');
  t.after(() => stuck.destroy());
  stuck.on('error', () => {});
  await new Promise<void>((r) => stuck.once('connect', () => r()));
  // Let the headend's loop accept it (nothing observable tells when; a listener that closes first resets it).
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  await headend.close();
  const ms = Date.now() - t0;
  t.diagnostic(`close took ${ms} ms`);
  // Waiting for either peer would take 2 s (the bye's own grace) or 5 s (the handshake timeout).
  assert.ok(ms < 1_500, `close waited ${ms} ms for peers`);
  // The bye was in the kernel before the descriptor closed: the slow reader still gets it.
  c.socket.resume();
  await c.closed;
  assert.equal(c.control.find((m) => m.type === 'bye')?.type, 'bye');
});

test('a headend whose tunnel port is taken says so and exits, leaving no socket to hold the process', async (t) => {
  const d = tempDir(t, 'ck-he-', true);
  const pki = await createTestPki(d.dir);
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
  t.after(() => {
    squatter.close();
    d.remove();
  });
  const port = (squatter.address() as AddressInfo).port;
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, {}));
  writeJson(d.path('headend.json'), headendConfigDoc(d, pki, { metricsPort: null, listenPort: port }));
  const t0 = Date.now();
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', CLI, 'headend', '--config', d.path('headend.json')], { cwd: REPO });
    let stderr = '';
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const kill = setTimeout(() => c.kill('SIGKILL'), 20_000);
    c.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, stderr });
    });
  });
  assert.notEqual(r.code, 0);
  assert.equal(r.code === null, false, `still running after 20 s (the VXLAN and datagram sockets held it): ${r.stderr.slice(-300)}`);
  assert.match(r.stderr, /cannot listen for tunnels/);
  t.diagnostic(`exited in ${Date.now() - t0} ms`);
});

test('a session that goes silent is closed as dead-peer after session.deadAfterMs', async (t) => {
  const { d, pki, headend } = await setup(t);
  const c = await rawTunnel(headend.tunnelAddress.port, await pki.client('A-1'), pki.dcCa.pem);
  t.after(() => c.socket.destroy());
  await c.hello();
  const t0 = performance.now();
  await c.closed;
  t.diagnostic(`silent session closed after ${Math.round(performance.now() - t0)} ms (deadAfterMs 3000)`);
  await waitFor('dead-peer audit line', 3_000, () => auditLines(d).some((l) => l['event'] === 'disconnect' && l['reason'] === 'dead-peer'));
});

test('the hello-ack grants dhcp-from-dc exactly for segments whose registry entry allows DHCP from the DC', async (t) => {
  const d = tempDir(t, 'ck-he-dhcp-', true);
  const pki = await createTestPki(d.dir);
  writeJson(
    d.path('registry.json'),
    registryDoc({ acme: { vni: 100, allowDhcpFromDc: true }, globex: { vni: 200 } }, { 'A-1': 'acme', 'G-1': 'globex' }),
  );
  const headend = await startHeadend(parseHeadendConfig(headendConfigDoc(d, pki), d.dir), { log: silentLogger, registryPollMs: 0 });
  t.after(() => headend.close());
  for (const [serial, want] of [
    ['A-1', ['dhcp-from-dc']],
    ['G-1', []],
  ] as const) {
    const c = await rawTunnel(headend.tunnelAddress.port, await pki.client(serial), pki.dcCa.pem);
    const ack = await c.hello();
    c.socket.destroy();
    assert.deepEqual(ack.type === 'hello-ack' ? ack.capabilities : null, want, serial);
  }
});
