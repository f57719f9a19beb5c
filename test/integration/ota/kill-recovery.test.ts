// SPDX-License-Identifier: UNLICENSED
// kill -9 of a device updater process at every step of an A/B update: each time the device is on a good
// version right after the kill, and the restarted updater finishes (or rolls back) to a good version.
// An interrupted download resumes with a Range request instead of starting over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readlinkSync, writeFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../../src/shared/log.js';
import { encodeUsignPublicKey, generateUsignKeyPair } from '../../../src/shared/usign/index.js';
import { startArtifactServer } from '../../../src/ota/adapters/artifact-server.js';
import { initSlots } from '../../../src/agent/adapters/ota/slots.js';
import type { JobDocument } from '../../../src/shared/ota/protocol.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { agentArtifact, buildRelease, type BuiltRelease } from './helpers/release.js';
import { FIRST_VERSION } from './helpers/device.js';

const CHILD = fileURLToPath(new URL('./helpers/device-child.ts', import.meta.url));

interface Run {
  child: ChildProcess;
  lines: string[];
  waitFor(prefix: string, ms?: number): Promise<string>;
  exit: Promise<number | null>;
}

function startChild(env: Record<string, string>): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { prefix: string; resolve: (l: string) => void }[] = [];
  let buf = '';
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdout?.on('data', (b: Buffer) => {
    buf += b.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters])
        if (line.startsWith(w.prefix)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
    }
  });
  // 'close' (not 'exit'): all of stdout has been read by then, so no line is missed under load.
  const exit = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  return {
    child,
    lines,
    exit,
    waitFor: (prefix, ms = 45_000) =>
      new Promise<string>((resolve, reject) => {
        const hit = lines.find((l) => l.startsWith(prefix));
        if (hit) return resolve(hit);
        const timer = setTimeout(
          () => reject(new Error(`child never printed "${prefix}"; lines: ${lines.join(' | ')}; stderr: ${stderr}`)),
          ms,
        );
        waiters.push({ prefix, resolve: (l) => (clearTimeout(timer), resolve(l)) });
        void exit.then(() => {
          const late = lines.find((l) => l.startsWith(prefix));
          if (late) return resolve(late);
          reject(new Error(`child exited before "${prefix}"; lines: ${lines.join(' | ')}; stderr: ${stderr}`));
        });
      }),
  };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The slot `current` points to is complete and self-consistent: its agent file is the one its VERSION names. */
function goodVersion(root: string, known: Map<string, Buffer>): string {
  const slot = readlinkSync(join(root, 'current'));
  const dir = join(root, slot);
  const version = readFileSync(join(dir, 'VERSION'), 'utf8').trim();
  const expected = known.get(version);
  assert.ok(expected, `current -> ${slot} holds unknown version "${version}"`);
  const agent = readFileSync(join(dir, `connector-agent-${version}.mjs`));
  assert.equal(sha(agent), sha(expected), `agent file in ${slot} matches version ${version}`);
  return version;
}

test('kill -9 at every step of an A/B update always leaves and ends on a good version', async (t) => {
  const pki = await createTestPki(tempDir(t, 'ck-ota-pki-').dir, { singleCa: true });
  const dir = tempDir(t, 'ck-ota-kill-').dir;
  const logLines: string[] = [];
  const log = createLogger({ write: (l) => logLines.push(l) });
  const fast = await startArtifactServer({ dir, cert: pki.server.cert, key: pki.server.key, host: '127.0.0.1', port: 0, log });
  t.after(() => fast.close());
  const slow = await startArtifactServer({
    dir: dir,
    cert: pki.server.cert,
    key: pki.server.key,
    host: '127.0.0.1',
    port: 0,
    log,
    throttleBytesPerS: 256 * 1024,
  });
  t.after(() => slow.close());
  const key = generateUsignKeyPair();
  const pub = encodeUsignPublicKey(key.publicKey);
  const first = agentArtifact(FIRST_VERSION, true);
  const good = buildRelease({ dir, baseUrl: fast.url, version: '1.1.0', key: key.secretKey, content: agentArtifact('1.1.0', true) });
  const broken = buildRelease({ dir, baseUrl: fast.url, version: '1.2.0', key: key.secretKey, content: agentArtifact('1.2.0', false) });
  const big = buildRelease({
    dir,
    baseUrl: slow.url,
    version: '1.3.0',
    key: key.secretKey,
    content: agentArtifact('1.3.0', true, 1024 * 1024),
  });
  const known = new Map<string, Buffer>([
    [FIRST_VERSION, first],
    ['1.1.0', good.artifact],
    ['1.2.0', broken.artifact],
    ['1.3.0', big.artifact],
  ]);

  const scenario = async (name: string, rel: BuiltRelease, killAt: string, finalVersion: string, finalState: string): Promise<void> => {
    const root = join(dir, `dev-${name}`);
    await initSlots(root, FIRST_VERSION, { [`connector-agent-${FIRST_VERSION}.mjs`]: first });
    const job: JobDocument = {
      jobId: `job-${name}`,
      rolloutId: 'r',
      manifest: rel.manifestBytes.toString('base64'),
      signature: rel.signature,
      issuedAt: new Date().toISOString(),
    };
    const jobFile = join(dir, `job-${name}.json`);
    writeFileSync(jobFile, JSON.stringify(job));
    const env = { CK_ROOT: root, CK_PUBKEY: pub, CK_CA: pki.dcCa.file, CK_JOB: jobFile };
    const a = startChild({ ...env, CK_KILL_AT: killAt });
    await a.waitFor(`AT ${killAt}`);
    a.child.kill('SIGKILL');
    assert.equal(await a.exit, null, 'killed, not exited');
    const afterKill = goodVersion(root, known);
    assert.ok([FIRST_VERSION, rel.manifest.version].includes(afterKill));
    const b = startChild(env);
    const done = await b.waitFor('DONE ');
    assert.equal(await b.exit, 0);
    assert.equal(goodVersion(root, known), finalVersion, `${name}: final version`);
    const reports = b.lines.filter((l) => l.startsWith('REPORT ')).map((l) => JSON.parse(l.slice(7)) as { state: string });
    const last = reports.at(-1)?.state ?? done.slice(5);
    assert.equal(last, finalState, `${name}: last reported state (${done})`);
    const state = JSON.parse(readFileSync(join(root, 'var', 'state.json'), 'utf8')) as { state: { phase: string } };
    assert.equal(state.state.phase, 'idle');
    assert.equal(existsSync(join(root, 'var', 'download')), false, 'download cache cleaned');
  };

  for (const point of [
    'downloading',
    'verifying',
    'installing',
    'switching',
    'switching:before-rename',
    'switching:after-rename',
    'health-check',
    'health-check:polling',
  ]) {
    await t.test(`kill at ${point}`, () => scenario(point.replace(':', '-'), good, point, '1.1.0', 'succeeded'));
  }
  await t.test('kill during the health check of a broken release: rolls back', () =>
    scenario('broken-health', broken, 'health-check:polling', FIRST_VERSION, 'rolled-back'),
  );
  await t.test('kill between rollback decision and switch back: still rolls back', () =>
    scenario('broken-rollback', broken, 'rolling-back', FIRST_VERSION, 'rolled-back'),
  );

  await t.test('a download killed half way resumes with a Range request', async () => {
    logLines.length = 0;
    await scenario('download-resume', big, 'downloading:3', '1.3.0', 'succeeded');
    const requests = logLines
      .map((l) => JSON.parse(l) as { msg: string; path?: string; range?: string; status?: number; bytes?: number })
      .filter((r) => r.msg === 'artifact request' && r.path?.includes('1.3.0'));
    const ranged = requests.filter((r) => r.range !== undefined);
    assert.ok(ranged.length >= 1, `a Range request was made: ${JSON.stringify(requests)}`);
    const from = Number(/^bytes=(\d+)-$/.exec(ranged[0]?.range ?? '')?.[1]);
    assert.ok(from > 0, `resumed from byte ${from}, not 0`);
    assert.equal(ranged[0]?.status, 206);
    assert.equal((ranged[0]?.bytes ?? 0) + from, big.artifact.length, 'only the missing bytes were sent');
  });
});
