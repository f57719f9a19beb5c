// SPDX-License-Identifier: UNLICENSED
// The Connector as it really runs: the arm64 agent binary the image build makes, on Debian's arm64
// kernel under qemu-system-aarch64 (TCG, cortex-a53: the slowest ARMv8 model, the nearest to the R3S's
// A55), with nothing in the guest but a static busybox, the kernel modules and the binary's own glibc.
// The VM replaces the lab's tenant-A Connector (two-port wiring): its LAN NIC is a port of the site's LAN
// switch, its WAN NIC reaches the real EST server and headend through the ISP's CGNAT, and the recovered
// VM sits behind the hypervisor's kernel VTEP. It enrolls from the factory block on its virtio disk, puts
// tap-dr into br-lan, carries pings both ways without loss and a GARP failover, answers `status --json`,
// and stops cleanly on SIGTERM. Timings are logged as diagnostics (docs/arm64-vm.md).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentUci } from '../../../src/lab/core/configs.js';
import { planLab, SITE, TENANT_SERIAL } from '../../../src/lab/core/topology.js';
import { FACTORY_BLOCK_OFFSET } from '../../../src/shared/factory-block/factory-block.js';
import { isRoot } from '../../helpers/netns.js';
import { skipUnlessCi } from '../../helpers/skip.js';
import { garpMove, labSkipReason, openLab, type LabHandle } from '../../lab/lab-fixture.js';
import { buildAgentBinary } from './agent-binary.js';
import { buildBootFiles } from './initramfs.js';
import { agentInputs, vmInputs } from './inputs.js';
import { Vm } from './vm.js';

const TOOLS = ['qemu-system-aarch64', 'dpkg-deb', 'aarch64-linux-gnu-strip', 'aarch64-linux-gnu-gcc', 'patchelf'];
const onPath = (tool: string): boolean => (process.env['PATH'] ?? '').split(':').some((d) => d && existsSync(join(d, tool)));
function why(): string | false {
  if (!isRoot()) return 'needs root (network namespaces, TAPs)';
  const missing = TOOLS.filter((x) => !onPath(x));
  if (missing.length > 0) return `missing ${missing.join(', ')} (scripts/setup-host.sh installs qemu-system-arm and the arm64 cross tools)`;
  return labSkipReason({ headend: true }) ?? false;
}
const skip = skipUnlessCi(why());

const WAN = { ip: '100.64.2.2/24', gw: '100.64.2.1', mac: '02:00:00:00:a6:01', tap: 'a64-wan' };
const LAN = { mac: SITE.connector.mac, tap: 'a64-lan' };
const IDENTITY = '/var/lib/connector';
const SOCK = '/tmp/agent.sock';
const INIT = fileURLToPath(new URL('./init.sh', import.meta.url));

describe('arm64 system test: the agent binary on an arm64 kernel (qemu-system-aarch64, cortex-a53)', { skip }, () => {
  let dir = '';
  let lab: LabHandle | undefined;
  let vm: Vm | undefined;
  let agentStartUp = 0;
  let bootLine = '';
  const removeDir = (): void => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  // Set when the agent never got its identity: the later checks then fail at once instead of each
  // waiting out its own bound for a tunnel that cannot come.
  let noAgent: string | undefined;
  const must = (): { lab: LabHandle; vm: Vm } => {
    if (!lab || !vm) assert.fail('the VM did not come up (see the before hook)');
    if (noAgent) assert.fail(`the agent did not enroll (first test): ${noAgent}`);
    return { lab, vm };
  };
  const vmSh = async (cmd: string, timeoutMs = 60_000): Promise<string> => {
    const r = await must().vm.run(cmd, timeoutMs);
    assert.equal(r.rc, 0, `in the VM: ${cmd}\n${r.out}`);
    return r.out;
  };

  before(async () => {
    // About 700 MB of unpacked inputs and build output: on tmpfs when there is one, where removing them
    // costs nothing (on this host's disk it took 13-16 s under load, a tenth of the test's budget).
    dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'ck-a64-'));
    // tmpfs holds memory until removed: remove it even when the run ends without reaching after().
    process.once('exit', removeDir);
    const t0 = Date.now();
    const share = join(dir, 'share');
    // The VM's files and the lab come up side by side (two cores; both mostly wait on child processes).
    const files = (async () => {
      // A missing input fails here with what is missing, where from and where to put it.
      const [vmIn, agIn] = await Promise.all([vmInputs(), agentInputs()]);
      const kernel = vmIn.get('linux-image-arm64');
      const busybox = vmIn.get('busybox-static');
      if (!kernel || !busybox) assert.fail('vm.lock.json must pin linux-image-arm64 and busybox-static');
      if (kernel.replaced) console.log(`# the pinned kernel is gone from deb.debian.org; using ${kernel.replaced}: update vm.lock.json`);
      const [boot, agent] = await Promise.all([
        buildBootFiles({ kernelDeb: kernel.path, busyboxDeb: busybox.path, init: INIT, work: join(dir, 'boot') }),
        buildAgentBinary(agIn, join(dir, 'agent'), share),
      ]);
      console.log(
        `# inputs + boot files + agent binary: ${Date.now() - t0} ms (kernel ${boot.kernelRelease}, agent ${agent.size} bytes, modules ${boot.modules.join(' ')})`,
      );
      return boot;
    })();
    const labUp = openLab(undefined, { wiring: 'two-port', headend: true, agents: false }).then((l) => {
      lab = l;
      console.log(`# lab up (namespaces, PKI, factory block, EST server, headend, kernel VTEP): ${Date.now() - t0} ms`);
      return l;
    });
    // Both settle before either error is thrown, so after() finds the lab when only the build failed.
    const [bootR, labR] = await Promise.allSettled([files, labUp]);
    if (bootR.status === 'rejected') throw bootR.reason;
    if (labR.status === 'rejected') throw labR.reason;
    const boot = bootR.value;
    const labUpNow = labR.value;
    const ns = labUpNow.ns('connector');
    // The lab's Connector namespace becomes two switches: its LAN port (to the site switch) with the VM's
    // LAN TAP, its WAN port (to the ISP) with the VM's WAN TAP. The VM takes the Connector's addresses.
    const ip = (...a: string[]): string => execFileSync('ip', ['-n', ns, ...a], { encoding: 'utf8' });
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    ip('addr', 'flush', 'dev', 'br-lan');
    ip('link', 'set', 'br-lan', 'address', '02:00:00:00:a6:fe');
    ip('addr', 'flush', 'dev', 'eth0');
    ip('link', 'add', 'br-wan', 'type', 'bridge', 'forward_delay', '0');
    ip('link', 'set', 'eth0', 'master', 'br-wan');
    ip('link', 'set', 'br-wan', 'up');
    for (const [tap, br] of [
      [WAN.tap, 'br-wan'],
      [LAN.tap, 'br-lan'],
    ] as const) {
      ip('tuntap', 'add', 'dev', tap, 'mode', 'tap');
      ip('link', 'set', tap, 'master', br, 'up');
    }

    const plan = planLab('two-port');
    mkdirSync(join(share, 'etc'), { recursive: true });
    writeFileSync(
      join(share, 'etc/connector.uci'),
      agentUci(plan, 'lab-site-a', {
        identityDir: IDENTITY,
        statusSocket: SOCK,
        factoryBlockPath: '/dev/vda',
        factoryBlockOffset: FACTORY_BLOCK_OFFSET,
      }),
    );
    const unit = labUpNow.state().files['unit:connector'];
    if (!unit) assert.fail('the lab provisioned no unit disk for the connector');
    const consoleLog = join(dir, 'console.log');
    vm = new Vm({
      netns: ns,
      kernel: boot.kernel,
      initrd: boot.initrd,
      params: { wan: WAN.ip, gw: WAN.gw, lan: `${SITE.connector.ip}/${SITE.prefixLen}`, wanmac: WAN.mac, lanmac: LAN.mac, '9p': 'host0' },
      nics: [
        { tap: WAN.tap, mac: WAN.mac },
        { tap: LAN.tap, mac: LAN.mac },
      ],
      disks: [unit],
      share,
      onLine: (l) => writeFileSync(consoleLog, `${l}\n`, { flag: 'a' }),
    });
    const init = await vm.marker('init-start', 120_000);
    const net = await vm.marker('net-up', 90_000);
    const ready = await vm.marker('ready', 30_000);
    const nine = await vm.marker('9p', 1_000);
    assert.equal(nine.detail.trim(), 'ok', 'the 9p share with the agent binary is mounted');
    bootLine = `boot: qemu start -> /init ${init.hostMs} ms, -> console ready ${ready.hostMs} ms`;
    console.log(
      `# boot: qemu start -> /init ${init.hostMs} ms (guest uptime ${init.up} s), -> net-up ${net.hostMs} ms, -> ready ${ready.hostMs} ms; ${init.detail}`,
    );
  });

  after(async () => {
    const t0 = Date.now();
    await vm?.stop(10_000).catch(() => vm?.kill());
    await lab?.down();
    console.log(`# VM poweroff and lab down: ${Date.now() - t0} ms`);
    // CK_A64_KEEP=1 keeps the work directory: console.log there is the VM's whole console.
    process.removeListener('exit', removeDir);
    if (dir && process.env['CK_A64_KEEP'] !== '1') removeDir();
    else if (dir) console.log(`# kept ${dir} (console.log: the VM console)`);
  });

  test('the agent enrolls over EST with the IDevID from the factory block on its virtio disk', async (t) => {
    const { lab, vm } = must();
    t.diagnostic(bootLine);
    const start = await vm.run(
      `mkdir -p ${IDENTITY} && chmod 700 ${IDENTITY} && (connector-agent run --config /etc/connector.uci </dev/null & echo $! > /tmp/agent.pid; wait $!; echo $? > /tmp/agent.rc) > /tmp/agent.log 2>&1 &`,
    );
    assert.equal(start.rc, 0, start.out);
    agentStartUp = start.upEnd;
    const r = await vm.run(
      `for i in $(seq 1 200); do [ -s ${IDENTITY}/op.cert.pem ] && break; [ -f /tmp/agent.rc ] && break; sleep 0.5; done; [ -s ${IDENTITY}/op.cert.pem ] && cut -d' ' -f1 /proc/uptime`,
      180_000,
    );
    if (r.rc !== 0) {
      noAgent = 'no operational certificate';
      const log = (await vm.run('tail -n 30 /tmp/agent.log; cat /tmp/agent.rc 2>/dev/null')).out;
      assert.fail(`no operational certificate (the agent exited, or 200 polls passed); agent log and exit code:\n${log}`);
    }
    const up = Number(r.out.trim().split('\n').pop());
    t.diagnostic(`enrollment: agent start -> operational certificate on disk ${(up - agentStartUp).toFixed(2)} s (guest clock)`);
    const issued = lab.state().files['issuanceLog'] ?? '';
    assert.ok(readFileSync(issued, 'utf8').includes(TENANT_SERIAL.a), `the EST server issued a certificate to ${TENANT_SERIAL.a}`);
  });

  test('tap-dr is a port of br-lan in the VM', async () => {
    const out = await vmSh(
      'for i in $(seq 1 200); do [ -e /sys/class/net/br-lan/brif/tap-dr ] && break; sleep 0.2; done; ls -1 /sys/class/net/br-lan/brif',
      60_000,
    );
    assert.match(out, /^tap-dr$/m, `br-lan ports: ${out}`);
  });

  test('0 of 200 pings lost both ways between the LAN host and the recovered VM in the DC', async (t) => {
    const { lab, vm } = must();
    const waited = await lab.waitPing('lan-host', SITE.vm.ip, 60_000);
    const now = await vm.run(`cut -d' ' -f1 /proc/uptime`);
    t.diagnostic(
      `first ping lan-host -> DC VM: ${(Number(now.out.trim()) - agentStartUp).toFixed(2)} s after the agent started (waited ${waited} ms here)`,
    );
    const there = await lab.ping('lan-host', SITE.vm.ip, { count: 200, intervalS: 0.02, timeoutS: 2 });
    const back = await lab.ping('vm', SITE.lanHost.ip, { count: 200, intervalS: 0.02, timeoutS: 2 });
    const rtt = (r: { rttMs: number[] }): string => {
      const s = [...r.rttMs].sort((a, b) => a - b);
      return `median ${(s[Math.floor(s.length / 2)] ?? 0).toFixed(2)} ms, max ${(s[s.length - 1] ?? 0).toFixed(2)} ms`;
    };
    t.diagnostic(`pings: lan-host -> vm ${there.received}/200 (${rtt(there)}), vm -> lan-host ${back.received}/200 (${rtt(back)})`);
    assert.equal(there.received, 200, `lan-host -> DC VM lost ${200 - there.received}: ${there.errors.slice(0, 3).join('; ')}`);
    assert.equal(back.received, 200, `DC VM -> lan-host lost ${200 - back.received}: ${back.errors.slice(0, 3).join('; ')}`);
  });

  test("a GARP failover (the DC VM's IP on a new MAC) reaches the LAN host through the arm64 agent", async (t) => {
    const { lab } = must();
    const ms = await garpMove(lab, '02:00:00:00:10:56', 5_000, async () => {
      const r = await lab.ping('lan-host', SITE.vm.ip, { count: 5, intervalS: 0.1, timeoutS: 2 });
      assert.equal(r.received, 5, 'the VM answers on its new MAC');
    });
    t.diagnostic(`GARP -> lan-host neighbour updated in ${ms} ms`);
  });

  test('`connector-agent status --json` in the VM reports the tunnel up with its identity, and the agent RSS', async (t) => {
    const out = await vmSh(`connector-agent status --json --socket ${SOCK}`, 90_000);
    const doc = JSON.parse(out.slice(out.indexOf('{'))) as {
      tunnel?: { state?: string; vni?: number };
      identity?: { state?: string; serial?: string };
    };
    assert.equal(doc.tunnel?.state, 'up', out);
    assert.equal(doc.tunnel?.vni, 1001);
    assert.equal(doc.identity?.state, 'ready');
    const rss = await vmSh('grep -E "^(VmRSS|VmHWM)" /proc/$(cat /tmp/agent.pid)/status');
    t.diagnostic(`agent memory in the VM: ${rss.replace(/\s+/g, ' ').trim()}`);
  });

  test('SIGTERM stops the agent cleanly (exit 0) and removes tap-dr', async () => {
    const { vm } = must();
    const out = await vmSh(
      'kill -TERM $(cat /tmp/agent.pid); for i in $(seq 1 150); do [ -f /tmp/agent.rc ] && break; sleep 0.1; done; echo "rc=$(cat /tmp/agent.rc 2>/dev/null)"; ls -1 /sys/class/net',
      60_000,
    );
    assert.match(out, /^rc=0$/m, `agent exit after SIGTERM:\n${out}\n${(await vm.run('tail -n 20 /tmp/agent.log')).out}`);
    assert.doesNotMatch(out, /^tap-dr$/m, 'tap-dr is gone');
  });
});
