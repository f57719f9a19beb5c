// SPDX-License-Identifier: UNLICENSED
// VXLAN egress with UDP GSO: what a VTEP receives must be exactly the datagrams one send per frame
// would have produced, in order, whatever mix of full-size and other frames the headend emits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { createVtepSender } from '../../../../src/headend/adapters/vtep-sender.js';
import { nsExec } from '../../../../src/lab/adapters/netns.js';
import { isRoot, netnsScope } from '../../../helpers/netns.js';
import { skipUnlessCi } from '../../../helpers/skip.js';

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
    const sent = [
      frame(1514, 1),
      frame(1514, 2),
      frame(1514, 3),
      frame(60, 4),
      frame(1514, 5),
      frame(1518, 6),
      ...Array.from({ length: 50 }, (_, i) => frame(1514, 10 + i)),
    ];
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

const skipNs = skipUnlessCi(!isRoot() && 'needs root (network namespaces)');

test(
  'a path whose MTU is below a VXLAN packet: the refused GSO run is re-sent frame by frame and GSO goes off',
  { skip: skipNs },
  async (t) => {
    // The kernel refuses GSO segments larger than the path MTU (EMSGSIZE); single datagrams get fragmented.
    // The sender runs in its own namespace (a child process), where the veth has MTU 1500.
    const scope = netnsScope(t, 'ckg');
    const a = await scope.ns('a');
    const b = await scope.ns('b');
    await nsExec(a, 'ip', ['link', 'add', 'name', 'va', 'mtu', '1500', 'type', 'veth', 'peer', 'name', 'vb', 'netns', b]);
    await nsExec(a, 'ip', ['addr', 'add', '10.77.0.1/24', 'dev', 'va']);
    await nsExec(b, 'ip', ['addr', 'add', '10.77.0.2/24', 'dev', 'vb']);
    await nsExec(a, 'ip', ['link', 'set', 'dev', 'va', 'up']);
    await nsExec(b, 'ip', ['link', 'set', 'dev', 'vb', 'up']);
    const receiver = nsExec(b, process.execPath, [
      '-e',
      `
    const s = require('node:dgram').createSocket('udp4'); let n = 0, bytes = 0;
    s.on('message', (m) => { n++; bytes += m.length; });
    s.bind(4789, '10.77.0.2', () => setTimeout(() => { console.log(JSON.stringify({ n, bytes })); s.close(); }, 2500));`,
    ]);
    await sleep(500);
    const mod = new URL('../../../../src/headend/adapters/vtep-sender.ts', import.meta.url).href;
    const sender = await nsExec(
      a,
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `
    import { createSocket } from 'node:dgram';
    import { once } from 'node:events';
    const { createVtepSender } = await import(${JSON.stringify(mod)});
    const udp = createSocket('udp4'); udp.bind(0, '10.77.0.1'); await once(udp, 'listening');
    let off = '';
    const s = await createVtepSender({ udp, localAddress: '10.77.0.1', port: 4789, onGsoOff: (r) => { off = r; } });
    const gsoAtStart = s.gso;
    const f = Buffer.alloc(1514, 7); f.writeUInt16BE(0x0800, 12);
    for (let i = 0; i < 10; i++) s.send('10.77.0.2', 42, f);
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 10; i++) s.send('10.77.0.2', 42, f);
    await new Promise((r) => setTimeout(r, 200));
    console.log(JSON.stringify({ gsoAtStart, gso: s.gso, off, stats: s.stats }));
    await s.close(); udp.close();`,
      ],
      { cwd: new URL('../../../../', import.meta.url).pathname },
    );
    const out = JSON.parse(sender.stdout.trim().split('\n').pop() ?? '{}') as {
      gsoAtStart: boolean;
      gso: boolean;
      off: string;
      stats: { single: number; gsoFailures: number };
    };
    assert.equal(out.gsoAtStart, true, `GSO available at start: ${sender.stderr}`);
    assert.equal(out.gso, false);
    assert.match(out.off, /EMSGSIZE|EINVAL/);
    assert.equal(out.stats.gsoFailures, 1);
    assert.equal(out.stats.single, 20);
    const got = JSON.parse((await receiver).stdout.trim()) as { n: number; bytes: number };
    assert.deepEqual(got, { n: 20, bytes: 20 * 1522 }, 'every frame arrived (as a reassembled fragmented datagram)');
  },
);
