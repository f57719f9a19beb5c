// SPDX-License-Identifier: UNLICENSED
// Several networks per Connector (issue 15, item 3), the headend's side: a trunk unit opens one session per
// VLAN over the same certificate and names the VLAN in its hello (`vlan:<id>`); the registry maps each VLAN
// to a segment of the unit's tenant. Sessions of different VLANs coexist, identical MACs stay in their own
// segments, an unmapped VLAN is refused with an audit line, and a newer session replaces only its VLAN's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../../src/shared/log.js';
import { parseHeadendConfig } from '../../../src/headend/core/config.js';
import { startHeadend } from '../../../src/headend/main.js';
import { headendConfigDoc, rawTunnel, testFrame, writeJson } from './adapters/fixtures.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

async function fakeVtep(
  t: { after(fn: () => void): void },
  address: string,
  port = 0,
): Promise<{ port: number; got: Buffer[]; sock: Socket }> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(port, address, () => r()));
  t.after(() => sock.close());
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(Buffer.from(m)));
  return { port: (sock.address() as AddressInfo).port, got, sock };
}

test('one session per VLAN: each on its own segment, unmapped VLANs refused, replacement per VLAN', async (t) => {
  const d = tempDir(t, 'ck-vlan-', true);
  const pki = await createTestPki(d.dir);
  const lanVtep = await fakeVtep(t, '127.0.0.2');
  const camVtep = await fakeVtep(t, '127.0.0.3', lanVtep.port);
  writeJson(d.path('registry.json'), {
    version: 1,
    tenants: {
      acme: {
        segments: {
          lan: { vni: 100, vteps: ['127.0.0.2'] },
          cams: { vni: 120, vteps: ['127.0.0.3'] },
        },
      },
    },
    devices: { 'A-1': { state: 'claimed', tenant: 'acme', segment: 'lan', vlans: { '20': 'cams' }, updatedAt: '' } },
  });
  const headend = await startHeadend(parseHeadendConfig(headendConfigDoc(d, pki, { vtepPort: lanVtep.port }), d.dir), {
    log: silentLogger,
    registryPollMs: 0,
  });
  t.after(async () => {
    await headend.close();
    d.remove();
  });
  const id = await pki.client('A-1');
  const port = headend.tunnelAddress.port;
  const [u, v20, v30] = await Promise.all([
    rawTunnel(port, id, pki.dcCa.pem),
    rawTunnel(port, id, pki.dcCa.pem),
    rawTunnel(port, id, pki.dcCa.pem),
  ]);
  t.after(() => [u, v20, v30].forEach((c) => c.socket.destroy()));
  const ackU = await u.hello();
  const ack20 = await v20.hello(['l2', 'vlan:20']);
  const ack30 = await v30.hello(['vlan:30']);
  assert.equal(ackU.type === 'hello-ack' && ackU.vni, 100);
  assert.equal(ack20.type === 'hello-ack' && ack20.vni, 120);
  assert.deepEqual(ack20.type === 'hello-ack' && ack20.capabilities, ['vlan:20']);
  assert.equal(ack30.type === 'error' && ack30.message, 'vlan-unmapped');
  await v30.closed;
  assert.ok(!u.socket.destroyed && !v20.socket.destroyed, 'the untagged and VLAN 20 sessions coexist');

  // Identical source MAC on both networks: each broadcast reaches only its own segment's VTEP.
  const mac = '02:00:00:00:00:01';
  for (let i = 0; i < 5; i++) {
    u.send(100, testFrame(mac, 'ff:ff:ff:ff:ff:ff', `untagged-${i}`));
    v20.send(120, testFrame(mac, 'ff:ff:ff:ff:ff:ff', `cams-${i}`));
  }
  await waitFor('broadcasts at both VTEPs', 3_000, () => lanVtep.got.length === 5 && camVtep.got.length === 5);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(
    lanVtep.got.every((p) => p.readUIntBE(4, 3) === 100 && p.includes(Buffer.from('untagged')) && !p.includes(Buffer.from('cams'))),
  );
  assert.ok(
    camVtep.got.every((p) => p.readUIntBE(4, 3) === 120 && p.includes(Buffer.from('cams')) && !p.includes(Buffer.from('untagged'))),
  );

  // A reconnect of VLAN 20 replaces VLAN 20's older session only.
  const again = await rawTunnel(port, id, pki.dcCa.pem);
  t.after(() => again.socket.destroy());
  await again.hello(['vlan:20']);
  await v20.closed;
  assert.ok(!u.socket.destroyed, 'the untagged session stays');
  assert.deepEqual(
    headend
      .sessions()
      .map((s) => [s.vni, s.vlan])
      .sort(),
    [
      [100, 0],
      [120, 20],
    ],
  );

  const audit = readFileSync(d.path('audit.jsonl'), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(audit.some((r) => r['event'] === 'connect' && r['vlan'] === 20 && r['vni'] === 120 && r['segment'] === 'cams'));
  assert.ok(audit.some((r) => r['event'] === 'refused' && r['reason'] === 'vlan-unmapped'));
});
