// SPDX-License-Identifier: UNLICENSED
// A site and a datacentre in namespaces for the DR tests (root): LAN hosts on the site's bridge, the real
// agent's TAP on it, the headend in `dc`, and a hypervisor `hv` with one kernel VXLAN + bridge per VNI and
// VM namespaces on them. Not a test file itself; cleanup goes through the caller's test context.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ipIn } from '../../../src/lab/adapters/netns.js';
import { kernelVtep, netnsScope, type NetnsScope } from '../../helpers/netns.js';
import { REPO, headendConfigDoc, spawnHeadend, writeJson, type HeadendProcess } from '../../integration/headend/adapters/fixtures.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir, type TempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

export interface Host {
  ns: string;
  ifname: string;
  mac: string;
  ip: string;
}

export interface SiteDc {
  scope: NetnsScope;
  d: TempDir;
  headend: HeadendProcess;
  hosts: Record<string, Host>;
  vms: Record<string, Host>;
  registryFile: string;
  /** The site's LAN link as seen on the bridge (capture point for "reaches the LAN"). */
  lanCapture: { ns: string; ifname: string };
  children: ChildProcess[];
  /** Starts tcpdump; resolves once it listens; stop() returns the pcap path. */
  capture(ns: string, ifname: string, name: string, filter?: string): Promise<{ stop(): Promise<string> }>;
  /** Kills the site's agent (the site is gone) / starts it again (the site returns). */
  stopAgent(): Promise<void>;
  startAgent(): void;
  siteNs: string;
  /** The headend's namespace (its metrics listen on 10.99.0.1). */
  dcNs: string;
  hvNs: string;
  /** Adds a VM namespace on VNI `vni` of the hypervisor (creating that VNI's VXLAN and bridge). */
  addVm(role: string, vni: number, mac: string, ipCidr: string): Promise<Host>;
}

export async function siteDc(
  t: TestContext,
  o: {
    registry: (vtep: string) => unknown;
    hosts: Record<string, { mac: string; ipCidr: string }>;
    vms: Record<string, { vni: number; mac: string; ipCidr: string }>;
    /** More headend config (e.g. `{ l2: { engine: 'kernel' } }`). */
    headend?: Record<string, unknown>;
    /** More agent options, UCI lines (e.g. `option datagram '1'`). */
    agent?: readonly string[];
  },
): Promise<SiteDc> {
  const scope = netnsScope(t, 'ckd');
  const d = tempDir(t, 'ck-dr-', true);
  const children: ChildProcess[] = [];
  t.after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    scope.cleanup();
    if (process.env['CK_KEEP'] !== '1') d.remove();
  });
  const [site, dc, hv] = (await Promise.all(['site', 'dc', 'hv'].map((r) => scope.ns(r)))) as [string, string, string];
  const n = (r: string): string => scope.ifname(r);
  const link = async (a: string, an: string, b: string, bn: string): Promise<void> => {
    await ipIn(a, 'link', 'add', an, 'type', 'veth', 'peer', 'name', bn, 'netns', b);
    await ipIn(a, 'link', 'set', an, 'up');
    await ipIn(b, 'link', 'set', bn, 'up');
  };
  await link(site, n('sd'), dc, n('ds'));
  await link(dc, n('dh'), hv, n('hd'));
  await ipIn(site, 'addr', 'add', '10.99.0.2/24', 'dev', n('sd'));
  await ipIn(dc, 'addr', 'add', '10.99.0.1/24', 'dev', n('ds'));
  await ipIn(dc, 'addr', 'add', '10.98.0.1/24', 'dev', n('dh'));
  await ipIn(hv, 'addr', 'add', '10.98.0.2/24', 'dev', n('hd'));
  await ipIn(dc, 'link', 'set', n('dh'), 'mtu', '1554');
  await ipIn(hv, 'link', 'set', n('hd'), 'mtu', '1554');
  await ipIn(site, 'link', 'add', 'br0', 'type', 'bridge');
  await ipIn(site, 'link', 'set', 'br0', 'up');

  const hosts: Record<string, Host> = {};
  let lanCapture = { ns: site, ifname: '' };
  for (const [role, h] of Object.entries(o.hosts)) {
    const ns = await scope.ns(role);
    await link(ns, n(`${role}e`), site, n(`${role}p`));
    await ipIn(site, 'link', 'set', n(`${role}p`), 'master', 'br0');
    await ipIn(ns, 'link', 'set', n(`${role}e`), 'address', h.mac);
    await ipIn(ns, 'addr', 'add', h.ipCidr, 'dev', n(`${role}e`));
    hosts[role] = { ns, ifname: n(`${role}e`), mac: h.mac, ip: h.ipCidr.split('/')[0] ?? '' };
    if (!lanCapture.ifname) lanCapture = { ns, ifname: n(`${role}e`) };
  }
  const vnis = new Set<number>();
  const addVm = async (role: string, vni: number, mac: string, ipCidr: string): Promise<Host> => {
    if (!vnis.has(vni)) {
      vnis.add(vni);
      await kernelVtep(hv, { vni, local: '10.98.0.2', remote: '10.98.0.1', dev: n('hd') });
    }
    const ns = await scope.ns(role);
    await link(hv, n(`${role}h`), ns, n(`${role}e`));
    await ipIn(hv, 'link', 'set', n(`${role}h`), 'master', `br${vni}`);
    await ipIn(ns, 'link', 'set', n(`${role}e`), 'address', mac);
    await ipIn(ns, 'addr', 'add', ipCidr, 'dev', n(`${role}e`));
    return { ns, ifname: n(`${role}e`), mac, ip: ipCidr.split('/')[0] ?? '' };
  };
  const vms: Record<string, Host> = {};
  for (const [role, v] of Object.entries(o.vms)) vms[role] = await addVm(role, v.vni, v.mac, v.ipCidr);

  const pki = await createTestPki(d.dir, { serverIps: ['10.99.0.1'] });
  const dev = await pki.client('CN-0001');
  const registryFile = d.path('registry.json');
  writeJson(registryFile, o.registry('10.98.0.2'));
  writeJson(d.path('headend.json'), {
    ...headendConfigDoc(d, pki, { listenHost: '10.99.0.1', listenPort: 8443, vxlanAddress: '10.98.0.1', vxlanPort: 4789, vtepPort: 4789 }),
    ...o.headend,
  });
  const idDir = d.path('identity');
  mkdirSync(idDir, { recursive: true });
  copyFileSync(dev.keyFile, join(idDir, 'op.key.pem'));
  copyFileSync(dev.certFile, join(idDir, 'op.cert.pem'));
  copyFileSync(pki.dcCa.file, join(idDir, 'dc-ca.pem'));
  const agentConf = d.path('connector.uci');
  writeFileSync(
    agentConf,
    [
      "config agent 'agent'",
      "\tlist headend 'tls://10.99.0.1:8443'",
      "\toption bridge 'br0'",
      `\toption tap_name '${n('tap')}'`,
      `\toption identity_dir '${idDir}'`,
      `\toption status_socket '${d.path('agent.sock')}'`,
      "\toption log_format 'json'",
      ...(o.agent ?? []).map((l) => `\t${l}`),
      '',
    ].join('\n'),
  );

  const capture = async (ns: string, ifname: string, name: string, filter?: string): Promise<{ stop(): Promise<string> }> => {
    const file = d.path(`${name}.pcap`);
    const dump = spawn(
      'ip',
      ['netns', 'exec', ns, 'tcpdump', '--immediate-mode', '-i', ifname, '-U', '-n', '-w', file, ...(filter ? [filter] : [])],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    children.push(dump);
    await new Promise<void>((resolve) => dump.stderr.on('data', (b: Buffer) => b.toString().includes('listening') && resolve()));
    return {
      async stop() {
        await new Promise((r) => setTimeout(r, 300));
        dump.kill('SIGINT');
        if (dump.exitCode === null) await new Promise((r) => dump.once('exit', r));
        return file;
      },
    };
  };

  const headend = await spawnHeadend(d.path('headend.json'), dc);
  children.push(headend.child);
  let agentLog = '';
  let agent: ChildProcess | undefined;
  const startAgent = (): void => {
    const a = spawn(
      'ip',
      ['netns', 'exec', site, process.execPath, '--import', 'tsx', join(REPO, 'src/agent/cli.ts'), 'run', '--config', agentConf],
      {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(a);
    a.stdout?.on('data', (b: Buffer) => (agentLog += b.toString()));
    a.stderr?.on('data', (b: Buffer) => (agentLog += b.toString()));
    agent = a;
  };
  const stopAgent = async (): Promise<void> => {
    const a = agent;
    if (!a || a.exitCode !== null || a.signalCode !== null) return;
    const exited = new Promise((r) => a.once('exit', r));
    a.kill('SIGKILL');
    await exited;
  };
  startAgent();
  await waitFor(`the site's session up (agent: ${agentLog.slice(-1500)})`, 30_000, () =>
    headend.lines.some((l) => l['msg'] === 'session up') ? true : undefined,
  );
  return {
    scope,
    d,
    headend,
    hosts,
    vms,
    registryFile,
    lanCapture,
    children,
    capture,
    addVm,
    stopAgent,
    startAgent,
    siteNs: site,
    dcNs: dc,
    hvNs: hv,
  };
}
