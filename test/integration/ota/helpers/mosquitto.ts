// SPDX-License-Identifier: UNLICENSED
// Starts a real mosquitto on 127.0.0.1 (free port) with the config `connector ota broker-config` makes,
// and kills it in t.after.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { generateBrokerConfig } from '../../../../src/ota/core/broker-config.js';
import type { TestPki } from '../../../helpers/pki.js';
import { waitFor } from '../../../helpers/wait.js';

export const CONTROLLER_CN = 'connector-controller';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise<boolean>((r) => {
    const c = connect(port, '127.0.0.1', () => {
      c.destroy();
      r(true);
    });
    c.on('error', () => r(false));
  });
}

export interface Broker {
  readonly url: string;
  readonly port: number;
  readonly logFile: string;
}

/** `edit` lets a control experiment weaken the generated config to show what a line protects against. */
export async function startMosquitto(
  t: { after(fn: () => void | Promise<void>): void },
  pki: TestPki,
  edit: (conf: string) => string = (c) => c,
  name = 'mosquitto',
  o: { legacyJobState?: boolean; observers?: readonly string[] } = {},
): Promise<Broker> {
  const port = await freePort();
  const aclFile = join(pki.dir, `${name}.acl`);
  const logFile = join(pki.dir, `${name}.log`);
  const files = generateBrokerConfig({
    cafile: pki.dcCa.file,
    certfile: pki.server.certFile,
    keyfile: pki.server.keyFile,
    aclFile,
    host: '127.0.0.1',
    port,
    controllerUsers: [CONTROLLER_CN],
    runAsUser: 'root',
    logFile,
    ...(o.legacyJobState ? { legacyJobState: true } : {}),
    ...(o.observers ? { observerUsers: o.observers } : {}),
  });
  writeFileSync(join(pki.dir, `${name}.conf`), edit(files.mosquittoConf));
  writeFileSync(aclFile, files.acl);
  const child = spawn('mosquitto', ['-c', join(pki.dir, `${name}.conf`)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  t.after(async () => {
    if (child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
  });
  try {
    await waitFor(`mosquitto listening on ${port}`, 5000, () => listening(port), 50);
  } catch (e) {
    throw new Error(`${(e as Error).message}: ${stderr}`);
  }
  return { url: `mqtts://127.0.0.1:${port}`, port, logFile };
}
