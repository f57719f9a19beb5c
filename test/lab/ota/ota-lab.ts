// SPDX-License-Identifier: UNLICENSED
// A small OTA lab in network namespaces: three Connector sites behind a carrier-grade NAT, and a
// datacentre namespace running the headend (with its registry), a real mosquitto configured by
// `connector ota broker-config` and the artifact server `connector ota serve`. Each site runs the real
// agent from its A/B slot under a supervisor stand-in (procd's job on the device). Everything lives in
// namespaces with a unique prefix and is removed by down(), on test failure and on process exit.
//
//   s1 (br-lan 192.168.10.2, wan 100.64.1.2) --+
//   s2 (br-lan 192.168.10.2, wan 100.64.2.2) --+-- isp (masquerade 100.64/10) -- dc 203.0.113.10
//   s3 (br-lan 192.168.10.2, wan 100.64.3.2) --+        headend :443, mosquitto :8883, artifacts :8443
//   lanN (192.168.10.20) hangs on sN's br-lan.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchStatus } from '../../../src/agent/adapters/status-socket.js';
import { initSlots } from '../../../src/agent/adapters/ota/slots.js';
import { addNetns, ipIn, removeNetnsWithPrefix, sysctlIn, uniquePrefix } from '../../../src/lab/adapters/netns.js';
import { projectRoot } from '../../../src/lab/adapters/programs.js';
import { exec, type ExecResult } from '../../../src/shared/exec.js';
import { createSelfSignedCa, exportPrivateKeyPem, generateKeyPair, issueCertificate, type Issuer } from '../../../src/shared/pki/x509.js';
import { parseRegistry } from '../../../src/shared/registry/registry.js';
import { writeRegistryFile } from '../../../src/shared/registry/registry-file.js';
import { waitFor } from '../../helpers/wait.js';

export const ROOT = projectRoot();
export const DC_ADDR = '203.0.113.10';
export const BROKER_PORT = 8883;
export const ARTIFACT_PORT = 8443;
export const HEADEND_PORT = 443;
export const BOARD = 'friendlyarm,nanopi-r3s';
export const CONTROLLER_CN = 'connector-controller';
export const SITE_COUNT = 3;
export const serialOf = (i: number): string => `LAB-OTA-000${i}`;

/** The stand-in for the real agent binary (npm run build-image builds that one): runs the sources. */
export function agentStandIn(version: string, o: { configOverride?: string; label?: string } = {}): string {
  const args = o.configOverride ? `run --config '${o.configOverride}'` : '"$@"';
  return [
    '#!/bin/sh',
    `# LAB STAND-IN for the connector-agent binary, version ${version}. The real one is the single-file`,
    '# bundle built by `npm run build-image`; this script runs the agent from the project sources.',
    `echo "stand-in connector-agent ${version} starting${o.label ? ` (${o.label})` : ''}" >&2`,
    `cd '${ROOT}' || exit 1`,
    `exec '${process.execPath}' --import tsx '${join(ROOT, 'src/agent/cli.ts')}' ${args}`,
    '',
  ].join('\n');
}

/**
 * SUPERVISOR STAND-IN for procd + /etc/init.d/connector (there is no procd in the lab). Like the init
 * script it runs `<slots>/current/connector-agent run --config UCI` when that file is executable and the
 * image's own binary (`factoryBin`, /usr/bin/connector-agent on the device) otherwise, and starts it
 * again whenever it exits (procd: respawn). Each start is logged with the slot and the choice made.
 */
export function supervisorScript(slots: string, uci: string, factoryBin: string): string {
  return [
    '#!/bin/sh',
    '# LAB STAND-IN for procd running /etc/init.d/connector: restart the agent whenever it exits.',
    'n=0',
    'while :; do',
    '  n=$((n + 1))',
    `  prog='${factoryBin}'`,
    `  [ -x '${slots}/current/connector-agent' ] && prog='${slots}/current/connector-agent'`,
    `  echo "supervisor: start #$n current=$(readlink '${slots}/current') prog=$prog" >&2`,
    `  "$prog" run --config '${uci}'`,
    '  echo "supervisor: agent exited with $?" >&2',
    '  sleep 0.3',
    'done',
    '',
  ].join('\n');
}

export interface Site {
  readonly index: number;
  readonly serial: string;
  readonly ns: string;
  readonly dir: string;
  readonly uci: string;
  readonly slots: string;
  readonly stateDir: string;
  readonly sock: string;
  readonly log: string;
  /** The image's own agent binary (stand-in), run when the slot holds no executable agent. */
  readonly factoryBin: string;
}

export interface OtaLab {
  readonly dir: string;
  readonly prefix: string;
  readonly sites: readonly Site[];
  readonly dcNs: string;
  readonly pki: { ca: string; server: { cert: string; key: string }; controller: { cert: string; key: string } };
  readonly releaseDir: string;
  readonly serveDir: string;
  readonly brokerUrl: string;
  /** `connector ...` from the sources inside a namespace. */
  connector(ns: string, args: readonly string[], o?: { allowFailure?: boolean; timeoutMs?: number }): Promise<ExecResult>;
  agentStatus(site: Site): Promise<Record<string, unknown> | undefined>;
  /** UCI for a site whose tunnel can never come up (a headend address nobody answers on). */
  deadHeadendUci(site: Site): string;
  logTails(): string;
  down(): Promise<void>;
}

const HOUR = 3_600_000;

async function issuePair(
  issuer: Issuer,
  o: { cn: string; serialNumber?: string; profile: 'server' | 'client'; ips?: string[] },
): Promise<{ cert: string; key: string }> {
  const keys = await generateKeyPair();
  const now = Date.now();
  const cert = await issueCertificate({
    issuer,
    subject: { cn: o.cn, ...(o.serialNumber ? { serialNumber: o.serialNumber } : {}), o: 'connector-kit ota lab' },
    publicKey: keys.publicKey,
    profile: o.profile,
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + 48 * HOUR),
    ...(o.ips ? { ips: o.ips } : {}),
  });
  return { cert: cert.toString('pem') + '\n', key: (await exportPrivateKeyPem(keys.privateKey)) + '\n' };
}

function uci(
  site: { index: number; dir: string; slots: string; stateDir: string; sock: string },
  files: { ca: string; pub: string },
  headend: string,
): string {
  return [
    "config agent 'agent'",
    "\toption enabled '1'",
    `\tlist headend 'tls://${headend}'`,
    "\toption bridge 'br-lan'",
    "\toption tap_name 'tap-dr'",
    `\toption identity_dir '${join(site.dir, 'identity')}'`,
    `\toption site 'ota-site-${site.index}'`,
    "\toption log_level 'info'",
    "\toption log_format 'json'",
    `\toption status_socket '${site.sock}'`,
    "\toption keepalive_s '1'",
    "\toption dead_after_s '3'",
    '',
    "config l2 'l2'",
    "\toption own_ip '192.168.10.2'",
    '',
    "config ota 'ota'",
    `\toption broker 'mqtts://${DC_ADDR}:${BROKER_PORT}'`,
    `\toption pubkey_slot0 '${files.pub}'`,
    `\toption ca_file '${files.ca}'`,
    `\toption state_dir '${site.stateDir}'`,
    `\toption slots_dir '${site.slots}'`,
    `\toption board '${BOARD}'`,
    "\toption health_deadline_s '8'",
    '',
  ].join('\n');
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Builds the lab and starts everything except the agents' supervisors (startSupervisors does that, after
 * the caller has put the release public key at `pubKey`).
 */
export async function openOtaLab(o: { pubKey: string; factoryVersion: string }): Promise<OtaLab & { startSupervisors(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'ck-ota-lab-'));
  chmodSync(dir, 0o755);
  const prefix = uniquePrefix('ckota');
  const children: ChildProcess[] = [];
  const logs: string[] = [];
  const kill = (): void => {
    for (const c of children) {
      // Detached: each child leads its own process group (the supervisor and the agent it started).
      if (c.pid !== undefined && c.exitCode === null) {
        try {
          process.kill(-c.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    removeNetnsWithPrefix(`${prefix}-`);
  };
  process.once('exit', kill);
  const down = async (): Promise<void> => {
    kill();
    process.removeListener('exit', kill);
    if (!process.env['CK_LAB_KEEP_DIR']) rmSync(dir, { recursive: true, force: true });
  };

  const start = (ns: string, name: string, cmd: string, args: readonly string[]): ChildProcess => {
    const log = join(dir, `${name}.log`);
    logs.push(log);
    const fd = openSync(log, 'a');
    try {
      const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { detached: true, stdio: ['ignore', fd, fd], cwd: ROOT });
      child.on('error', () => undefined);
      child.unref(); // never keep the test process alive; down() and the exit hook kill the group
      children.push(child);
      return child;
    } finally {
      closeSync(fd);
    }
  };
  const nsName = (n: string): string => `${prefix}-${n}`;
  const connector = (ns: string, args: readonly string[], eo: { allowFailure?: boolean; timeoutMs?: number } = {}): Promise<ExecResult> =>
    exec('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', join(ROOT, 'src/cli/connector.ts'), ...args], {
      cwd: ROOT,
      timeoutMs: eo.timeoutMs ?? 60_000,
      ...(eo.allowFailure ? { allowFailure: true } : {}),
    });

  try {
    // ---- network ----
    const dc = nsName('dc');
    const isp = nsName('isp');
    for (const n of ['dc', 'isp']) await addNetns(nsName(n));
    await ipIn(isp, 'link', 'add', 'dc', 'type', 'veth', 'peer', 'name', 'inet', 'netns', dc);
    await ipIn(isp, 'addr', 'add', '203.0.113.1/24', 'dev', 'dc');
    await ipIn(isp, 'link', 'set', 'dc', 'up');
    await ipIn(dc, 'addr', 'add', `${DC_ADDR}/24`, 'dev', 'inet');
    await ipIn(dc, 'link', 'set', 'inet', 'up');
    // The headend binds its VXLAN socket to the fabric address; no hypervisor is needed for tunnels.
    // (a veth pair inside dc: the kernel here has no dummy driver).
    await ipIn(dc, 'link', 'add', 'fabric', 'type', 'veth', 'peer', 'name', 'fabric-end');
    await ipIn(dc, 'addr', 'add', '198.18.0.1/24', 'dev', 'fabric');
    await ipIn(dc, 'link', 'set', 'fabric-end', 'up');
    await ipIn(dc, 'link', 'set', 'fabric', 'up');
    await sysctlIn(isp, 'net.ipv4.ip_forward', '1');
    // Carrier-grade NAT: the datacentre only ever sees 203.0.113.1, and nothing connects inwards.
    await exec('ip', ['netns', 'exec', isp, 'nft', '-f', '-'], {
      input: [
        'table ip cgnat {',
        '  chain cgnat_post { type nat hook postrouting priority 100; ip saddr 100.64.0.0/10 oifname "dc" masquerade; }',
        '  chain cgnat_fwd { type filter hook forward priority 0; policy drop;',
        '    ct state established,related accept; iifname "c*" oifname "dc" accept; }',
        '}',
        '',
      ].join('\n'),
    });

    const sites: Site[] = [];
    for (let i = 1; i <= SITE_COUNT; i++) {
      const s = nsName(`s${i}`);
      const lan = nsName(`lan${i}`);
      await addNetns(s);
      await addNetns(lan);
      await ipIn(isp, 'link', 'add', `c${i}`, 'type', 'veth', 'peer', 'name', 'wan', 'netns', s);
      await ipIn(isp, 'addr', 'add', `100.64.${i}.1/24`, 'dev', `c${i}`);
      await ipIn(isp, 'link', 'set', `c${i}`, 'up');
      await ipIn(s, 'addr', 'add', `100.64.${i}.2/24`, 'dev', 'wan');
      await ipIn(s, 'link', 'set', 'wan', 'up');
      await ipIn(s, 'route', 'add', 'default', 'via', `100.64.${i}.1`);
      await ipIn(s, 'link', 'add', 'br-lan', 'type', 'bridge');
      await ipIn(s, 'addr', 'add', '192.168.10.2/24', 'dev', 'br-lan');
      await ipIn(s, 'link', 'set', 'br-lan', 'up');
      await ipIn(lan, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'p-lan', 'netns', s);
      await ipIn(s, 'link', 'set', 'p-lan', 'master', 'br-lan');
      await ipIn(s, 'link', 'set', 'p-lan', 'up');
      await ipIn(lan, 'addr', 'add', '192.168.10.20/24', 'dev', 'eth0');
      await ipIn(lan, 'link', 'set', 'eth0', 'up');
      const sdir = join(dir, `s${i}`);
      sites.push({
        index: i,
        serial: serialOf(i),
        ns: s,
        dir: sdir,
        uci: join(sdir, 'connector.uci'),
        slots: join(sdir, 'slots'),
        stateDir: join(sdir, 'ota-state'),
        sock: join(sdir, 'agent.sock'),
        log: join(sdir, 'supervisor.log'),
        factoryBin: join(sdir, 'usr-bin', 'connector-agent'),
      });
    }

    // ---- PKI: one CA signs the servers (headend, broker, artifacts) and the clients (devices, controller) ----
    const pkiDir = join(dir, 'pki');
    mkdirSync(pkiDir, { recursive: true });
    const caKeys = await generateKeyPair();
    const caCert = await createSelfSignedCa(
      { cn: 'connector-kit ota lab CA', o: 'connector-kit ota lab' },
      caKeys,
      new Date(Date.now() - HOUR),
      new Date(Date.now() + 48 * HOUR),
      0,
    );
    const issuer: Issuer = { cert: caCert, privateKey: caKeys.privateKey };
    const w = (name: string, text: string): string => {
      const p = join(pkiDir, name);
      writeFileSync(p, text, { mode: 0o644 });
      return p;
    };
    const ca = w('ca.pem', caCert.toString('pem') + '\n');
    const srv = await issuePair(issuer, { cn: 'dc.ota-lab.example', profile: 'server', ips: [DC_ADDR] });
    const server = { cert: w('server.cert.pem', srv.cert), key: w('server.key.pem', srv.key) };
    const ctl = await issuePair(issuer, { cn: CONTROLLER_CN, profile: 'client' });
    const controller = { cert: w('controller.cert.pem', ctl.cert), key: w('controller.key.pem', ctl.key) };

    // ---- headend + registry: one tenant per site ----
    const dcDir = join(dir, 'dc');
    mkdirSync(dcDir, { recursive: true });
    const at = new Date().toISOString();
    const seg = (vni: number) => ({ vni, vteps: ['198.18.0.11'], vtepPathMtu: 9000, multiSite: false, allowDhcpFromDc: false });
    const registry = join(dcDir, 'registry.json');
    writeRegistryFile(
      registry,
      parseRegistry({
        version: 1,
        tenants: Object.fromEntries(sites.map((s) => [`t${s.index}`, { segments: { default: seg(2000 + s.index) } }])),
        devices: Object.fromEntries(
          sites.map((s) => [
            s.serial,
            { state: 'claimed', tenant: `t${s.index}`, segment: 'default', site: `ota-site-${s.index}`, updatedAt: at },
          ]),
        ),
        denylist: [],
      }),
    );
    const headendJson = join(dcDir, 'headend.json');
    writeFileSync(
      headendJson,
      JSON.stringify({
        listen: { host: DC_ADDR, port: HEADEND_PORT },
        tls: { cert: server.cert, key: server.key, deviceCa: ca },
        registry,
        auditLog: join(dcDir, 'audit.jsonl'),
        metrics: { host: '127.0.0.1', port: 9105 },
        vxlan: { localAddress: '198.18.0.1', port: 4789 },
        session: { keepaliveMs: 1_000, deadAfterMs: 3_000 },
      }),
    );
    start(dc, 'headend', process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/connector.ts'), 'headend', '--config', headendJson]);

    // ---- broker: the config `connector ota broker-config` writes, mosquitto inside dc ----
    const brokerDir = join(dir, 'broker');
    await connector(dc, [
      'ota',
      'broker-config',
      '--out',
      brokerDir,
      '--cafile',
      ca,
      '--certfile',
      server.cert,
      '--keyfile',
      server.key,
      '--host',
      DC_ADDR,
      '--port',
      String(BROKER_PORT),
      '--user',
      'root',
    ]);
    start(dc, 'mosquitto', 'mosquitto', ['-c', join(brokerDir, 'mosquitto.conf'), '-v']);

    // ---- artifact server ----
    const serveDir = join(dir, 'releases');
    mkdirSync(serveDir, { recursive: true });
    start(dc, 'artifact-server', process.execPath, [
      '--import',
      'tsx',
      join(ROOT, 'src/cli/connector.ts'),
      'ota',
      'serve',
      '--dir',
      serveDir,
      '--cert',
      server.cert,
      '--key',
      server.key,
      '--host',
      DC_ADDR,
      '--port',
      String(ARTIFACT_PORT),
    ]);

    // ---- each site: identity, UCI, factory slot a ----
    for (const s of sites) {
      const idDir = join(s.dir, 'identity');
      mkdirSync(idDir, { recursive: true, mode: 0o700 });
      const dev = await issuePair(issuer, { cn: s.serial, serialNumber: s.serial, profile: 'client' });
      writeFileSync(join(idDir, 'op.cert.pem'), dev.cert);
      writeFileSync(join(idDir, 'op.key.pem'), dev.key, { mode: 0o600 });
      writeFileSync(join(idDir, 'dc-ca.pem'), readFileSync(ca));
      writeFileSync(s.uci, uci(s, { ca, pub: o.pubKey }, `${DC_ADDR}:${HEADEND_PORT}`));
      await initSlots(s.slots, o.factoryVersion, { 'connector-agent': agentStandIn(o.factoryVersion) });
      chmodSync(join(s.slots, 'slots/a/connector-agent'), 0o755); // the factory install's binary is executable
      mkdirSync(join(s.dir, 'usr-bin'));
      writeFileSync(s.factoryBin, agentStandIn(o.factoryVersion, { label: 'image binary' }), { mode: 0o755 });
    }

    // Wait for the three DC services to listen.
    for (const port of [HEADEND_PORT, BROKER_PORT, ARTIFACT_PORT]) {
      const listens = async (): Promise<boolean> =>
        (await exec('ip', ['netns', 'exec', dc, 'ss', '-Htln', `sport = :${port}`], { allowFailure: true })).stdout.trim() !== '';
      await waitFor(`a listener on ${DC_ADDR}:${port} in dc`, 30_000, listens, 100);
    }

    const lab: OtaLab & { startSupervisors(): Promise<void> } = {
      dir,
      prefix,
      sites,
      dcNs: dc,
      pki: { ca, server, controller },
      releaseDir: join(dir, 'release'),
      serveDir,
      brokerUrl: `mqtts://${DC_ADDR}:${BROKER_PORT}`,
      connector,
      async agentStatus(site) {
        try {
          return (await fetchStatus(site.sock)) as Record<string, unknown>;
        } catch {
          return undefined;
        }
      },
      deadHeadendUci(site) {
        // 203.0.113.99 is in the dc subnet but unassigned: the TLS connect never completes.
        return uci(site, { ca, pub: o.pubKey }, `203.0.113.99:${HEADEND_PORT}`);
      },
      logTails() {
        return [...logs, ...sites.map((s) => s.log)].map((l) => `--- ${l}\n${tail(l)}`).join('\n');
      },
      down,
      async startSupervisors() {
        for (const s of sites) {
          const script = join(s.dir, 'supervisor-stand-in.sh');
          writeFileSync(script, supervisorScript(s.slots, s.uci, s.factoryBin), { mode: 0o755 });
          const fd = openSync(s.log, 'a');
          try {
            const child = spawn('ip', ['netns', 'exec', s.ns, 'sh', script], { detached: true, stdio: ['ignore', fd, fd], cwd: ROOT });
            child.on('error', () => undefined);
            child.unref();
            children.push(child);
          } finally {
            closeSync(fd);
          }
        }
      },
    };
    return lab;
  } catch (e) {
    await down();
    throw e;
  }
}
