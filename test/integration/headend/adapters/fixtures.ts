// SPDX-License-Identifier: UNLICENSED
// Test fixtures for the headend and tunnel tests: a registry, a headend config (over the PKI of
// test/helpers/pki.ts), a headend child process whose log lines the test can wait on, and a raw tunnel peer.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Identity, TestPki } from '../../../helpers/pki.js';
import type { TempDir } from '../../../helpers/tmp.js';
import { waitFor } from '../../../helpers/wait.js';
import { encodeEthernet } from '../../../../src/shared/l2/ethernet.js';
import { RecordDecoder, encodeRecord } from '../../../../src/shared/tunnel/records.js';
import { CONTROL_VNI, decodeControl, encodeControl, isControlFrame, type ControlMessage } from '../../../../src/shared/tunnel/control.js';

export const REPO = new URL('../../../../', import.meta.url).pathname;
export const CLI = join(REPO, 'src/cli/connector.ts');

export interface SegmentSpec {
  vni: number;
  vteps?: string[];
  multiSite?: boolean;
  vtepPathMtu?: number;
  allowDhcpFromDc?: boolean;
}

/** A registry with tenants {name: {segments: {lan: spec}}} and devices claimed onto them. */
export function registryDoc(
  tenants: Record<string, SegmentSpec>,
  devices: Record<string, string | { state: 'allowed' | 'revoked' }>,
  denylist: string[] = [],
): unknown {
  return {
    version: 1,
    tenants: Object.fromEntries(Object.entries(tenants).map(([t, s]) => [t, { segments: { lan: { vteps: [], ...s } } }])),
    devices: Object.fromEntries(
      Object.entries(devices).map(([serial, v]) => [
        serial,
        typeof v === 'string'
          ? { state: 'claimed', tenant: v, updatedAt: '2026-01-01T00:00:00Z' }
          : { ...v, updatedAt: '2026-01-01T00:00:00Z' },
      ]),
    ),
    denylist,
  };
}

export function writeJson(path: string, doc: unknown): void {
  writeFileSync(path, JSON.stringify(doc, null, 2) + '\n');
}

export interface HeadendConfigSpec {
  listenHost?: string;
  listenPort?: number;
  vxlanAddress?: string;
  vxlanPort?: number;
  vtepPort?: number;
  metricsPort?: number | null;
  keepaliveMs?: number;
  deadAfterMs?: number;
}

export function headendConfigDoc(d: TempDir, pki: TestPki, spec: HeadendConfigSpec = {}): Record<string, unknown> {
  return {
    listen: { host: spec.listenHost ?? '127.0.0.1', port: spec.listenPort ?? 0 },
    tls: { cert: pki.server.certFile, key: pki.server.keyFile, deviceCa: pki.deviceCa.file },
    registry: d.path('registry.json'),
    auditLog: d.path('audit.jsonl'),
    metrics: spec.metricsPort === null ? null : { host: spec.listenHost ?? '127.0.0.1', port: spec.metricsPort ?? 0 },
    vxlan: { localAddress: spec.vxlanAddress ?? '127.0.0.1', port: spec.vxlanPort ?? 0, vtepPort: spec.vtepPort ?? 4789 },
    session: { keepaliveMs: spec.keepaliveMs ?? 1_000, deadAfterMs: spec.deadAfterMs ?? 3_000, helloTimeoutMs: 5_000 },
  };
}

export interface HeadendProcess {
  child: ChildProcess;
  tunnelPort: number;
  vxlanPort: number;
  metricsPort: number | null;
  lines: Record<string, unknown>[];
  waitForLine(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `connector headend --config FILE` as a child (optionally inside a namespace) and waits until it listens. */
export async function spawnHeadend(configFile: string, ns?: string): Promise<HeadendProcess> {
  const args = ['--import', 'tsx', CLI, 'headend', '--config', configFile];
  const child = ns
    ? spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let buf = '';
  let stderrText = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    buf += s;
    stderrText += s;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let l: Record<string, unknown>;
      try {
        l = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      lines.push(l);
      for (const w of [...waiters]) {
        if (w.pred(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    }
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const waitForLine = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 15_000): Promise<Record<string, unknown>> => {
    const have = lines.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`headend log line not seen within ${timeoutMs} ms; stderr:\n${stderrText.slice(-3000)}`)),
        timeoutMs,
      );
      waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`headend exited; stderr:\n${stderrText.slice(-3000)}`));
      });
    });
  };
  const up = await waitForLine((l) => l['msg'] === 'headend listening');
  const port = (s: unknown): number => Number(String(s).split(':').pop());
  return {
    child,
    tunnelPort: port(up['tunnel']),
    vxlanPort: port(up['vxlan']),
    metricsPort: up['metrics'] === 'off' ? null : port(up['metrics']),
    lines,
    waitForLine,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // In a namespace the child is `ip netns exec`, which execs node: same pid.
      child.kill(signal);
      if (signal === 'SIGKILL' || signal === 'SIGTERM') await exited;
    },
  };
}

/**
 * A headend of two workers on the kernel engine inside `ns`, listening as `spec` says. Every child in
 * `children` (the headend first; the test adds its own) is killed when the test ends, then `cleanup`
 * runs (the test's namespaces) and the directory goes.
 */
export async function spawnKernelWorkers(
  t: { after(fn: () => void): void },
  d: TempDir,
  pki: TestPki,
  ns: string,
  spec: HeadendConfigSpec,
  cleanup: () => void,
): Promise<{ headend: HeadendProcess; children: ChildProcess[] }> {
  writeJson(d.path('headend.json'), { ...headendConfigDoc(d, pki, spec), l2: { engine: 'kernel' }, workers: 2 });
  const children: ChildProcess[] = [];
  t.after(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    cleanup();
    d.remove();
  });
  const headend = await spawnHeadend(d.path('headend.json'), ns);
  children.push(headend.child);
  return { headend, children };
}

/** A hand-driven tunnel peer: speaks the record stream directly so tests can send what the agent never would. */
export interface RawTunnel {
  socket: TLSSocket;
  control: ControlMessage[];
  frames: { vni: number; frame: Buffer }[];
  closed: Promise<void>;
  /** `capabilities`: e.g. ['vlan:20'] for a trunk unit's VLAN session. */
  hello(capabilities?: string[]): Promise<ControlMessage>;
  send(vni: number, frame: Buffer): void;
}

export function rawTunnel(port: number, id: Identity, ca: string, host = '127.0.0.1', localAddress?: string): Promise<RawTunnel> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host,
      port,
      key: id.key,
      cert: id.cert,
      ca,
      ALPNProtocols: ['connector-l2/1'],
      minVersion: 'TLSv1.3',
      ...(localAddress ? { localAddress } : {}),
    });
    const control: ControlMessage[] = [];
    const frames: { vni: number; frame: Buffer }[] = [];
    const dec = new RecordDecoder(
      (vni, frame) => {
        if (isControlFrame(vni, frame)) {
          const d = decodeControl(frame);
          if (d.ok) control.push(d.msg);
        } else {
          frames.push({ vni, frame: Buffer.from(frame) });
        }
      },
      () => {},
    );
    socket.on('data', (c: Buffer) => dec.push(c));
    socket.on('error', () => {});
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('secureConnect', () =>
      resolve({
        socket,
        control,
        frames,
        closed,
        send: (vni, frame) => socket.write(encodeRecord(vni, frame)),
        async hello(capabilities: string[] = []) {
          socket.write(
            encodeRecord(CONTROL_VNI, encodeControl({ type: 'hello', agentVersion: 'raw-test', site: 'test', capabilities, vni: 4242 })),
          );
          return waitFor('hello-ack or error', 5_000, () => control.find((m) => m.type === 'hello-ack' || m.type === 'error'));
        },
      }),
    );
    socket.once('error', reject);
  });
}

/** A broadcast or unicast test frame with a recognisable payload. */
export function testFrame(src: string, dst: string, tag: string): Buffer {
  return encodeEthernet({ src: macBytes(src), dst: macBytes(dst), etherType: 0x88b6, payload: Buffer.from(tag) });
}

function macBytes(s: string): Buffer {
  return Buffer.from(s.split(':').map((h) => Number.parseInt(h, 16)));
}
