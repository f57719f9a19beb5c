// SPDX-License-Identifier: UNLICENSED
// VXLAN egress with UDP GSO: what a VTEP receives must be exactly the datagrams one send per frame
// would have produced, in order, whatever mix of full-size and other frames the headend emits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { createVtepSender } from '../../../src/headend/vtep-sender.js';

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

const frame = (len: number, tag: number): Buffer => {
  const f = Buffer.alloc(len, tag);
  f.writeUInt16BE(0x0800, 12);
  return f;
};

for (const gso of [true, false]) {
  test(`datagrams arrive one per frame, in order, byte for byte (gso ${gso ? 'on' : 'off'})`, async (t) => {
    const udp = await bound();
    const vtepA = await bound();
    const sender = await createVtepSender({ udp, localAddress: '127.0.0.1', port: vtepA.address().port, gso });
    t.after(async () => {
      await sender.close();
      for (const s of [udp, vtepA]) s.close();
    });
    if (gso) assert.equal(sender.gso, true, `kernel/addon without UDP GSO: ${sender.gsoReason ?? ''}`);
    const got: Buffer[] = [];
    vtepA.on('message', (m) => got.push(m));
    // Full-size frames around a short one and a VLAN-tagged maximum (1518): order must survive.
    const sent = [frame(1514, 1), frame(1514, 2), frame(1514, 3), frame(60, 4), frame(1514, 5), frame(1518, 6), ...Array.from({ length: 50 }, (_, i) => frame(1514, 10 + i))];
    for (const [i, f] of sent.entries()) sender.send('127.0.0.1', 100 + i, f);
    for (let i = 0; i < 100 && got.length < sent.length; i++) await sleep(10);
    assert.equal(got.length, sent.length);
    for (const [i, f] of sent.entries()) {
      const d = got[i] as Buffer;
      assert.equal(d.length, 8 + f.length, `datagram ${i} length`);
      assert.equal(d[0], 0x08, 'I flag');
      assert.equal(d.readUIntBE(4, 3), 100 + i, `datagram ${i} VNI`);
      assert.ok(d.subarray(8).equals(f), `datagram ${i} payload`);
    }
    if (gso) assert.ok(sender.stats.gsoSends >= 2, 'full-size runs went out as GSO sends');
    else assert.equal(sender.stats.gsoSends, 0);
  });
}
