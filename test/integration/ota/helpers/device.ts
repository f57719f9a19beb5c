// SPDX-License-Identifier: UNLICENSED
// A test Connector: slot tree in a temp dir (v1.0.0 in slot a), an updater, and optionally its own MQTT
// identity. "Healthy" means the agent file in `current` says HEALTHY = true: the stand-in for "tunnel up".
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../../../src/shared/log.js';
import type { UsignPublicKey } from '../../../../src/shared/usign/index.js';
import { connectDeviceMqtt, type DeviceMqtt } from '../../../../src/agent/adapters/ota/mqtt-client.js';
import { initSlots, openSlotStore } from '../../../../src/agent/adapters/ota/slots.js';
import { createUpdater, type Updater, type UpdaterOptions } from '../../../../src/agent/adapters/ota/updater.js';
import type { JobStateReport } from '../../../../src/shared/ota/protocol.js';
import { agentArtifact, BOARD } from './release.js';
import type { TestPki } from '../../../helpers/pki.js';
import { tempDir } from '../../../helpers/tmp.js';

export const FIRST_VERSION = '1.0.0';

export async function currentAgentHealthy(root: string): Promise<boolean> {
  const dir = join(root, 'current');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.mjs'));
  for (const f of files) if (/HEALTHY = true/.test(await readFile(join(dir, f), 'utf8'))) return true;
  return false;
}

/** Hash of everything a refused update must not change: both slots and where `current` points. */
export function hashDeviceTree(root: string): string {
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = statSync(p);
      h.update(`${p.slice(root.length)}:${st.mode}\n`);
      if (st.isDirectory()) walk(p);
      else h.update(readFileSync(p));
    }
  };
  walk(join(root, 'slots'));
  h.update(`current->${readlinkSync(join(root, 'current'))}`);
  return h.digest('hex');
}

export interface TestDevice {
  readonly serial: string;
  readonly root: string;
  readonly stateDir: string;
  readonly updater: Updater;
  readonly reports: JobStateReport[];
  readonly mqtt?: DeviceMqtt;
  readonly restarts: string[];
  readonly sysupgradeCalls: string[][];
}

export async function createTestDevice(
  t: { after(fn: () => void | Promise<void>): void },
  o: {
    serial: string;
    keys: readonly UsignPublicKey[];
    artifactCa: string;
    pki?: TestPki;
    brokerUrl?: string;
    board?: string;
    healthDeadlineMs?: number;
    sysupgrade?: UpdaterOptions['sysupgrade'];
  },
): Promise<TestDevice> {
  const root = tempDir(t, `ck-ota-dev-${o.serial}-`).dir;
  const stateDir = join(root, 'var');
  await initSlots(root, FIRST_VERSION, { [`connector-agent-${FIRST_VERSION}.mjs`]: agentArtifact(FIRST_VERSION, true) });
  const reports: JobStateReport[] = [];
  const restarts: string[] = [];
  const sysupgradeCalls: string[][] = [];
  let mqtt: DeviceMqtt | undefined;
  if (o.pki && o.brokerUrl) {
    const id = o.pki.identity(o.serial);
    mqtt = await connectDeviceMqtt({
      url: o.brokerUrl,
      serial: o.serial,
      ca: o.pki.dcCa.pem,
      cert: id.cert,
      key: id.key,
      board: o.board ?? BOARD,
      log: silentLogger,
    });
    const m = mqtt;
    t.after(() => m.close());
  }
  const m = mqtt;
  const updater = createUpdater({
    serial: o.serial,
    board: o.board ?? BOARD,
    trustedKeys: o.keys,
    slots: openSlotStore(root),
    stateDir,
    report: async (r) => {
      reports.push(r);
      if (m) await m.report(r);
    },
    healthy: () => currentAgentHealthy(root),
    healthDeadlineMs: o.healthDeadlineMs ?? 600,
    healthPollMs: 100,
    restart: async (why) => {
      restarts.push(why);
    },
    sysupgrade:
      o.sysupgrade ??
      (async (args) => {
        sysupgradeCalls.push([...args]);
        return 0;
      }),
    downloadCa: o.artifactCa,
    log: silentLogger,
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))),
  });
  await updater.resume();
  if (mqtt) await mqtt.attach(updater);
  return { serial: o.serial, root, stateDir, updater, reports, restarts, sysupgradeCalls, ...(mqtt ? { mqtt } : {}) };
}
