// SPDX-License-Identifier: UNLICENSED
// The TAP addon against the real kernel: each test opens a TAP under a unique name, moves it into its
// own namespace at once (the fd keeps working) and talks to the kernel's ARP and ICMP through it.
// Children run where a test needs another identity (no CAP_NET_ADMIN, no /dev/net/tun, inside the ns).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { silentLogger } from '../../../../src/shared/log.js';
import { openTap, TapError, type TapDevice } from '../../../../src/agent/adapters/tap.js';
import { findTapAddon } from '../../../../src/shared/native/addon.js';
import { isRoot, netnsScope } from '../../../helpers/netns.js';
import { waitFor } from '../../../helpers/wait.js';
import { skipUnlessCi } from '../../../helpers/skip.js';

const execFileP = promisify(execFile);
// Commands run through execFile: the shared exec() writes stdin and can EPIPE when `ip` exits first.
const run = async (cmd: string, ...args: string[]): Promise<string> => (await execFileP(cmd, args)).stdout;
const ipIn = (ns: string, ...args: string[]): Promise<string> => run('ip', '-n', ns, ...args);

/** A namespace named under the scope's prefix, so the scope's cleanup removes it (even on failure). */
async function addNs(t: TestContext, role: string): Promise<{ ns: string; ifname: (r: string) => string }> {
  const scope = netnsScope(t, 'ckt');
  const ns = `${scope.prefix}-${role}`;
  await run('ip', 'netns', 'add', ns);
  await ipIn(ns, 'link', 'set', 'lo', 'up');
  return { ns, ifname: scope.ifname };
}
const skip = skipUnlessCi(!isRoot() && 'needs root (network namespaces, TUNSETIFF)');

const PEER_MAC = Buffer.from('02cc00000002', 'hex');
const KERNEL_IP = Buffer.from([10, 77, 0, 1]);
const PEER_IP = Buffer.from([10, 77, 0, 2]);
const BROADCAST = Buffer.alloc(6, 0xff);

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += (b[b.length - 1] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An Ethernet + IPv4 + ICMP echo request from the peer behind the TAP to the kernel. */
function echoRequest(dstMac: Buffer, id: number, seq: number, payload: Buffer): Buffer {
  const f = Buffer.alloc(14 + 20 + 8 + payload.length);
  dstMac.copy(f, 0);
  PEER_MAC.copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  const ip = f.subarray(14, 34);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip[8] = 64;
  ip[9] = 1;
  PEER_IP.copy(ip, 12);
  KERNEL_IP.copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const icmp = f.subarray(34);
  icmp[0] = 8;
  icmp.writeUInt16BE(id, 4);
  icmp.writeUInt16BE(seq, 6);
  payload.copy(icmp, 8);
  icmp.writeUInt16BE(checksum(icmp), 2);
  return f;
}

interface Echo {
  dst: string;
  src: string;
  type: number;
  id: number;
  seq: number;
  payload: Buffer;
  checksumOk: boolean;
}

function parseEcho(f: Buffer): Echo | undefined {
  if (f.length < 42 || f.readUInt16BE(12) !== 0x0800 || f[23] !== 1) return undefined;
  const ihl = ((f[14] ?? 0) & 0x0f) * 4;
  const icmp = f.subarray(14 + ihl, 14 + f.readUInt16BE(16));
  return {
    dst: f.subarray(0, 6).toString('hex'),
    src: f.subarray(6, 12).toString('hex'),
    type: icmp[0] ?? -1,
    id: icmp.readUInt16BE(4),
    seq: icmp.readUInt16BE(6),
    payload: Buffer.from(icmp.subarray(8)),
    checksumOk: checksum(icmp) === 0,
  };
}

interface Arp {
  dst: string;
  src: string;
  op: number;
  sha: string;
  spa: string;
  tpa: string;
  length: number;
}

function parseArp(f: Buffer): Arp | undefined {
  if (f.length < 42 || f.readUInt16BE(12) !== 0x0806) return undefined;
  return {
    dst: f.subarray(0, 6).toString('hex'),
    src: f.subarray(6, 12).toString('hex'),
    op: f.readUInt16BE(20),
    sha: f.subarray(22, 28).toString('hex'),
    spa: [...f.subarray(28, 32)].join('.'),
    tpa: [...f.subarray(38, 42)].join('.'),
    length: f.length,
  };
}

/** The peer's ARP reply to the kernel: "10.77.0.2 is at PEER_MAC". */
function arpReply(kernelMac: Buffer): Buffer {
  const f = Buffer.alloc(42);
  kernelMac.copy(f, 0);
  PEER_MAC.copy(f, 6);
  f.writeUInt16BE(0x0806, 12);
  f.writeUInt16BE(1, 14);
  f.writeUInt16BE(0x0800, 16);
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(2, 20);
  PEER_MAC.copy(f, 22);
  PEER_IP.copy(f, 28);
  kernelMac.copy(f, 32);
  KERNEL_IP.copy(f, 38);
  return f;
}

interface Fixture {
  ns: string;
  name: string;
  tap: TapDevice;
  kernelMac: Buffer;
}

/** A TAP opened here, moved into a fresh namespace, addressed 10.77.0.1/24 and up. */
async function tapInNamespace(t: TestContext, maxBatch = 64, writeThread = false): Promise<Fixture> {
  const { ns, ifname } = await addNs(t, 'k');
  const name = ifname('tap');
  const tap = openTap({ name, maxBatch, log: silentLogger, writeThread });
  assert.equal(tap.stats.writeThread, writeThread);
  t.after(() => tap.close());
  await run('ip', 'link', 'set', name, 'netns', ns);
  // Keep the wire quiet: only the frames a test provokes (no IPv6 DAD, MLD, router solicitations).
  await run('ip', 'netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${name}.disable_ipv6=1`);
  await ipIn(ns, 'addr', 'add', '10.77.0.1/24', 'dev', name);
  await ipIn(ns, 'link', 'set', name, 'up');
  const link = JSON.parse(await ipIn(ns, '-j', 'link', 'show', name)) as { address: string }[];
  const kernelMac = Buffer.from((link[0]?.address ?? '').replaceAll(':', ''), 'hex');
  assert.equal(kernelMac.length, 6, 'the TAP has a MAC address');
  return { ns, name, tap, kernelMac };
}

test('the kernel ARPs out of the TAP, our reply fills its neighbour table and releases the queued echo reply', { skip }, async (t) => {
  const { ns, name, tap, kernelMac } = await tapInNamespace(t);
  const arps: Arp[] = [];
  const echoes: Echo[] = [];
  tap.onFrames((frames) => {
    for (const f of frames) {
      const arp = parseArp(f);
      if (arp) {
        arps.push(arp);
        if (arp.op === 1 && arp.tpa === '10.77.0.2') assert.equal(tap.writeFrames([arpReply(kernelMac)]), 1);
      }
      const echo = parseEcho(f);
      if (echo) echoes.push(echo);
    }
  });
  const payload = Buffer.from('connector-kit tap test payload 0123456789');
  // The kernel must resolve 10.77.0.2 before it can answer, so the first frame out is its ARP request.
  assert.equal(tap.writeFrames([echoRequest(kernelMac, 0x4242, 1, payload)]), 1);
  await waitFor('the echo reply', 3000, () => echoes.length > 0, 10);

  const req = arps[0];
  assert.ok(req, 'an ARP request came out of the TAP');
  assert.deepEqual(req, {
    dst: BROADCAST.toString('hex'),
    src: kernelMac.toString('hex'),
    op: 1,
    sha: kernelMac.toString('hex'),
    spa: '10.77.0.1',
    tpa: '10.77.0.2',
    length: 42,
  });
  const neigh = await ipIn(ns, 'neigh', 'show', '10.77.0.2', 'dev', name);
  assert.match(neigh, /lladdr 02:cc:00:00:00:02/, `neighbour entry learned from our ARP reply: ${neigh}`);
  const reply = echoes[0];
  assert.ok(reply);
  assert.equal(reply.type, 0);
  assert.equal(reply.dst, PEER_MAC.toString('hex'));
  assert.equal(reply.src, kernelMac.toString('hex'));
  assert.equal(reply.id, 0x4242);
  assert.equal(reply.seq, 1);
  assert.ok(reply.checksumOk);
  assert.deepEqual(reply.payload, payload);
});

// 'from its thread': the writes are made by the TAP's write thread (the agent's default with more than one core).
for (const writeThread of [false, true])
  test(
    `a burst written in one call is accepted whole, and the replies arrive in batches of at most maxBatch${writeThread ? ' (writes from its thread)' : ''}`,
    { skip },
    async (t) => {
      const maxBatch = 32;
      const { ns, name, tap, kernelMac } = await tapInNamespace(t, maxBatch, writeThread);
      await ipIn(ns, 'neigh', 'replace', '10.77.0.2', 'lladdr', '02:cc:00:00:00:02', 'dev', name, 'nud', 'permanent');
      // Through the write thread: 1.2 MB in one call, more than one of its jobs holds (1 MB).
      const count = writeThread ? 900 : 500;
      const sizes: number[] = [];
      const replies = new Map<number, Echo>();
      tap.onFrames((frames) => {
        sizes.push(frames.length);
        for (const f of frames) {
          const e = parseEcho(f);
          if (e && e.type === 0 && e.id === 7) replies.set(e.seq, e);
        }
      });
      const payloadOf = (seq: number): Buffer => Buffer.alloc(writeThread ? 1_300 : 200, seq & 0xff);
      const requests = Array.from({ length: count }, (_, seq) => echoRequest(kernelMac, 7, seq, payloadOf(seq)));
      assert.equal(tap.writeFrames(requests), count);
      await waitFor(`${count} echo replies (have ${replies.size})`, 5000, () => replies.size === count, 10);

      for (let seq = 0; seq < count; seq++) {
        const r = replies.get(seq);
        assert.ok(r?.checksumOk, `reply ${seq} has a valid ICMP checksum`);
        assert.deepEqual(r.payload, payloadOf(seq), `reply ${seq} carries its request's payload`);
      }
      const frames = sizes.reduce((a, b) => a + b, 0);
      assert.ok(Math.max(...sizes) <= maxBatch, `no batch exceeds maxBatch: ${Math.max(...sizes)}`);
      assert.ok(sizes.length < frames, `fewer callbacks (${sizes.length}) than frames (${frames})`);
      assert.equal(tap.stats.txFrames, count);
      assert.equal(tap.stats.rxFrames, frames);
      assert.equal(tap.stats.rxBatches, sizes.length);
    },
  );

for (const writeThread of [false, true])
  test(
    `frames the kernel rejects are skipped and counted; the rest of the batch still goes out${writeThread ? ' (writes from its thread)' : ''}`,
    { skip },
    async (t) => {
      const { ns, name, tap, kernelMac } = await tapInNamespace(t, 64, writeThread);
      await ipIn(ns, 'neigh', 'replace', '10.77.0.2', 'lladdr', '02:cc:00:00:00:02', 'dev', name, 'nud', 'permanent');
      const seqs: number[] = [];
      tap.onFrames((frames) => {
        for (const f of frames) {
          const e = parseEcho(f);
          if (e && e.id === 9) seqs.push(e.seq);
        }
      });
      const runt = Buffer.alloc(4); // shorter than an Ethernet header: the kernel answers EINVAL
      const accepted = tap.writeFrames([
        echoRequest(kernelMac, 9, 1, Buffer.alloc(8)),
        runt,
        echoRequest(kernelMac, 9, 2, Buffer.alloc(8)),
      ]);
      // The thread takes all three and finds the runt refused when it writes it: counted then.
      assert.equal(accepted, writeThread ? 3 : 2);
      await waitFor('both echo replies', 3000, () => seqs.length === 2, 10);
      assert.deepEqual(seqs, [1, 2]);
      assert.equal(tap.stats.txDrops, 1);
      assert.equal(tap.stats.txFrames, 2);
      assert.equal(tap.stats.txErrors, 1);
      assert.equal(tap.stats.lastTxError, 'EINVAL');
    },
  );

test('close removes the TAP, stops callbacks, can be called again, and later writes count as drops', { skip }, async (t) => {
  const { ns, name, tap, kernelMac } = await tapInNamespace(t);
  await ipIn(ns, 'neigh', 'replace', '10.77.0.2', 'lladdr', '02:cc:00:00:00:02', 'dev', name, 'nud', 'permanent');
  let calls = 0;
  let closing: Promise<void> | undefined;
  tap.onFrames(() => {
    calls++;
    closing = tap.close(); // closing from inside the handler must be safe
  });
  const requests = Array.from({ length: 50 }, (_, seq) => echoRequest(kernelMac, 11, seq, Buffer.alloc(16)));
  assert.equal(tap.writeFrames(requests), 50);
  await waitFor('the first batch', 3000, () => closing !== undefined, 10);
  await closing;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(calls, 1, 'no batch is delivered after close');
  const gone = await ipIn(ns, 'link', 'show', name).then(
    () => false,
    () => true,
  );
  assert.ok(gone, 'a non-persistent TAP disappears when its fd is closed');
  await tap.close();
  assert.equal(tap.writeFrames([requests[0] ?? Buffer.alloc(0)]), 0);
  assert.equal(tap.stats.txDrops, 1);
});

test('deleting the link under an open TAP reports one read error and stops polling', { skip }, async (t) => {
  const { ns, name, tap } = await tapInNamespace(t);
  const errors: TapError[] = [];
  tap.onFrames(() => {});
  tap.onError((e) => errors.push(e));
  await ipIn(ns, 'link', 'del', name);
  await waitFor('the read error', 3000, () => errors.length > 0, 10);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(errors.length, 1, 'reported once, not once per loop iteration');
  assert.equal(errors[0]?.code, 'CK_ERR_TAP');
  assert.match(errors[0]?.errnoCode ?? '', /^EBADFD?$/);
  assert.equal(tap.stats.rxErrors, 1);
  await tap.close();
});

test('bad names fail with TapError carrying the errno, the call and the name', { skip }, () => {
  assert.throws(
    () => openTap({ name: 'a-name-longer-than-15', log: silentLogger }),
    (e: unknown) =>
      e instanceof TapError &&
      e.code === 'CK_ERR_TAP' &&
      e.errnoCode === 'ENAMETOOLONG' &&
      e.syscall === 'ioctl(TUNSETIFF)' &&
      e.message.includes('a-name-longer-than-15'),
  );
  assert.throws(
    () => openTap({ name: 'bad/name', log: silentLogger }),
    (e: unknown) => e instanceof TapError && e.errnoCode === 'EINVAL' && e.message.includes('bad/name'),
  );
  assert.throws(
    () => openTap({ name: 'x', maxBatch: 0, log: silentLogger }),
    (e: unknown) => e instanceof Error && /maxBatch/.test(e.message),
  );
});

/** Runs a small ES module against the raw addon in a child (other user, mount or network namespace). */
async function addonChild(
  prefix: readonly string[],
  body: string,
  env: Record<string, string> = {},
  loadInMain = true,
): Promise<Record<string, unknown>> {
  const addon = findTapAddon();
  assert.ok(addon, 'the addon is built (node-gyp rebuild)');
  const script =
    (loadInMain
      ? `import { constants } from 'node:os';` +
        `const m = { exports: {} }; process.dlopen(m, process.env.ADDON, constants.dlopen.RTLD_NOW); const tap = m.exports;`
      : '') +
    `const out = {}; const attempt = (k, f) => { try { out[k] = f(); } catch (e) { out[k] = { code: e.code, errno: e.errno, syscall: e.syscall, message: e.message }; } };` +
    body +
    `;process.stdout.write(JSON.stringify(out));`;
  const [cmd, ...args] = prefix;
  // execFile rather than the shared exec(): a child that exits before reading stdin must not EPIPE us.
  const { stdout } = await execFileP(cmd ?? 'env', [...args, process.execPath, '--input-type=module', '-e', script], {
    env: { ...process.env, ...env, ADDON: addon },
    timeout: 10_000,
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}

test('without CAP_NET_ADMIN creating a TAP fails with EPERM and says what is needed', { skip }, async () => {
  // A private /dev/net with a world-usable tun node, as on OpenWrt and Debian, so open() succeeds and
  // the privilege check is the kernel's TUNSETIFF.
  const out = await addonChild(
    [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mount -t tmpfs none /dev/net && mknod -m 666 /dev/net/tun c 10 200 && exec "$@"',
      'sh',
      'setpriv',
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
    ],
    `attempt('open', () => tap.open('ckperm0'))`,
  );
  assert.deepEqual(out['open'], {
    code: 'EPERM',
    errno: -1,
    syscall: 'ioctl(TUNSETIFF)',
    message: 'ioctl(TUNSETIFF) ckperm0: EPERM (Operation not permitted): needs root or CAP_NET_ADMIN',
  });
});

test('without /dev/net/tun opening fails with ENOENT and points at kmod-tun', { skip }, async () => {
  const out = await addonChild(
    ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec "$@"', 'sh'],
    `attempt('open', () => tap.open('cknotun0'))`,
  );
  const err = out['open'] as Record<string, unknown>;
  assert.equal(err['code'], 'ENOENT');
  assert.equal(err['syscall'], 'open(/dev/net/tun)');
  assert.match(String(err['message']), /cknotun0.*kmod-tun/);
});

test(
  'a persistent TAP is attached by name; a second opener gets EBUSY; another device type gets EINVAL; no name gets tapN',
  { skip },
  async (t) => {
    const { ns } = await addNs(t, 'p');
    await ipIn(ns, 'tuntap', 'add', 'dev', 'keep0', 'mode', 'tap');
    await ipIn(ns, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1');
    const out = await addonChild(
      ['ip', 'netns', 'exec', ns],
      `attempt('first', () => { const h = tap.open('keep0'); out.h = h; return h.ifname; });
     attempt('second', () => tap.open('keep0'));
     attempt('veth', () => tap.open('veth0'));
     attempt('auto', () => { const h = tap.open(''); tap.close(h); return h.ifname; });
     attempt('writeDown', () => [tap.write(out.h, [Buffer.alloc(60)]), tap.stats(out.h).lastWriteError]);
     (await import('node:child_process')).execFileSync('ip', ['link', 'set', 'keep0', 'up']);
     attempt('writeUp', () => tap.write(out.h, [Buffer.alloc(60)]));
     attempt('close', () => { tap.close(out.h); tap.close(out.h); return 'ok'; });
     delete out.h;`,
    );
    assert.equal(out['first'], 'keep0');
    assert.equal((out['second'] as Record<string, unknown>)['code'], 'EBUSY');
    assert.equal((out['veth'] as Record<string, unknown>)['code'], 'EINVAL');
    assert.match(String(out['auto']), /^tap\d+$/, 'an empty name gets the name the kernel picked');
    assert.deepEqual(out['writeDown'], [0, 'EIO'], 'a TAP whose link is down rejects writes with EIO');
    assert.equal(out['writeUp'], 1);
    assert.equal(out['close'], 'ok');
    await ipIn(ns, 'link', 'show', 'keep0'); // still there: closing never deletes a persistent TAP
  },
);

test('an exception thrown by the batch handler reaches uncaughtException instead of vanishing', { skip }, async (t) => {
  const { ns } = await addNs(t, 'x');
  const out = await addonChild(
    ['ip', 'netns', 'exec', ns],
    `const { execFileSync } = await import('node:child_process');
     const h = tap.open('ckthrow0');
     for (const a of [['addr', 'add', '10.77.0.1/24', 'dev', 'ckthrow0'], ['link', 'set', 'ckthrow0', 'address', '02:00:00:00:00:01', 'up']]) execFileSync('ip', a);
     let calls = 0;
     tap.start(h, 64, () => { calls++; throw new Error('boom from handler'); });
     await new Promise((resolve) => {
       process.once('uncaughtException', (e) => { out.caught = e.message; resolve(); });
       tap.write(h, [Buffer.from(process.env.FRAME, 'hex')]);
     });
     tap.close(h);
     out.calls = calls;`,
    { FRAME: echoRequest(Buffer.from('020000000001', 'hex'), 1, 1, Buffer.alloc(8)).toString('hex') },
  );
  assert.equal(out['caught'], 'boom from handler');
  assert.equal(out['calls'], 1);
});

test('a worker thread that exits with a polling TAP still open neither crashes the process nor leaks the TAP', { skip }, async (t) => {
  const { ns } = await addNs(t, 'w');
  // Node unloads the addon when a worker's environment goes away (the main thread never loads it here);
  // nothing of the addon, such as a uv_close callback, may run after that.
  const out = await addonChild(
    ['ip', 'netns', 'exec', ns],
    `const { Worker } = await import('node:worker_threads');
     const { execFileSync } = await import('node:child_process');
     const code = "const m = { exports: {} }; process.dlopen(m, process.env.ADDON); const h = m.exports.open('wk0');" +
       "if (require('node:worker_threads').workerData) m.exports.writeThread(h);" +
       "m.exports.start(h, 64, () => {}); require('node:worker_threads').parentPort.postMessage(h.ifname);" +
       "setTimeout(() => process.exit(0), 20);";
     out.rounds = [];
     for (let i = 0; i < 3; i++) {
       // The second round's TAP has a write thread, which the worker's exit must stop and join.
       const w = new Worker(code, { eval: true, execArgv: [], workerData: i === 1 });
       const name = await new Promise((resolve) => w.once('message', resolve));
       await new Promise((resolve) => w.once('exit', resolve));
       out.rounds.push([name, execFileSync('ip', ['-br', 'link']).toString().includes('wk0')]);
     }`,
    {},
    false,
  );
  assert.deepEqual(out['rounds'], [
    ['wk0', false],
    ['wk0', false],
    ['wk0', false],
  ]);
});

test('the largest frame a TAP carries (MTU 65521: 65535 bytes) arrives whole, next to a normal one', { skip }, async (t) => {
  const { ns, name, tap } = await tapInNamespace(t);
  await ipIn(ns, 'link', 'set', name, 'mtu', '65521'); // the kernel's maximum for a TAP
  await ipIn(ns, 'neigh', 'replace', '10.77.0.2', 'lladdr', '02:cc:00:00:00:02', 'dev', name, 'nud', 'permanent');
  const frames: Buffer[] = [];
  tap.onFrames((batch) => frames.push(...batch.map((f) => Buffer.from(f))));
  const sender = (size: number, fill: number): string =>
    `const s = (await import('node:dgram')).createSocket('udp4'); s.send(Buffer.alloc(${size}, ${fill}), 9, '10.77.0.2', () => s.close());`;
  // 65493 B of UDP payload make a 65521-byte IP packet: a 65535-byte frame, the most a u16 length holds.
  await run('ip', 'netns', 'exec', ns, process.execPath, '--input-type=module', '-e', sender(65493, 0xab));
  await run('ip', 'netns', 'exec', ns, process.execPath, '--input-type=module', '-e', sender(1000, 0xcd));
  await waitFor('the normal frame', 3000, () => frames.some((f) => f.length === 1042), 10);
  const big = frames.find((f) => f.length === 65535);
  assert.ok(big, `a 65535-byte frame arrived: ${frames.map((f) => f.length).join(',')}`);
  assert.equal(big.readUInt16BE(12), 0x0800);
  assert.ok(
    big.subarray(42).every((b) => b === 0xab),
    'its payload is intact to the last byte',
  );
  assert.equal(tap.stats.rxTruncated, 0);
});

test('pause: no frame is read while paused; they wait in the kernel and arrive, in order, on resume', { skip }, async (t) => {
  const { ns, name, tap } = await tapInNamespace(t);
  await ipIn(ns, 'neigh', 'replace', '10.77.0.2', 'lladdr', '02:cc:00:00:00:02', 'dev', name, 'nud', 'permanent');
  const got: number[] = [];
  tap.onFrames((batch) => {
    for (const f of batch) if (f.length > 42 && f.readUInt16BE(12) === 0x0800 && f[23] === 17) got.push(f.readUInt16BE(42));
  });
  const send = (from: number, n: number): string =>
    `const s = (await import('node:dgram')).createSocket('udp4'); for (let i = ${from}; i < ${from + n}; i++) { const b = Buffer.alloc(100); b.writeUInt16BE(i, 0); s.send(b, 9, '10.77.0.2'); } setTimeout(() => s.close(), 200);`;
  await run('ip', 'netns', 'exec', ns, process.execPath, '--input-type=module', '-e', send(0, 5));
  await waitFor('5 frames before the pause', 3000, () => got.length === 5, 10);
  tap.pause?.(true);
  await run('ip', 'netns', 'exec', ns, process.execPath, '--input-type=module', '-e', send(5, 50));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(got.length, 5, 'nothing read while paused');
  tap.pause?.(false);
  await waitFor('the 50 sent while paused', 3000, () => got.length === 55, 10);
  assert.deepEqual(
    got,
    Array.from({ length: 55 }, (_, i) => i),
    'all of them, in order',
  );
});
