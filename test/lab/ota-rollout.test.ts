// SPDX-License-Identifier: UNLICENSED
// Issue 5's lab proof: a rollout to three lab Connectors with real agents, a real mosquitto (configured by
// `connector ota broker-config`), the artifact server `connector ota serve`, a release made with
// `connector release manifest|sign`, and the rollout controller `connector ota rollout`. Every agent
// runs from its A/B slot under a supervisor stand-in for procd, and its health check is "tunnel up".
//
// The slot's `connector-agent` is a LAB STAND-IN for the real binary (the single-file bundle built by
// `npm run build-image`): a shell script that runs the agent from the sources and names its version.
// "A new agent" is a new script plus the VERSION file the updater writes into the slot.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exec } from '../../src/shared/exec.js';
import { agentStandIn, ARTIFACT_PORT, BOARD, DC_ADDR, openOtaLab, ROOT, type OtaLab, type Site } from './ota/ota-lab.js';
import {} from './lab-fixture.js';
import { waitFor } from '../helpers/wait.js';
import { skipUnlessCi } from '../helpers/skip.js';

const FACTORY = '1.0.0';
const GOOD = '1.1.0';
const BAD = '1.2.0';

function skipReason(): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'lab tests need root (network namespaces)';
  for (const tool of ['ip', 'nft', 'mosquitto', 'mosquitto_sub', 'ss']) {
    if (!(process.env['PATH'] ?? '').split(':').some((d) => d && existsSync(join(d, tool)))) return `needs ${tool}`;
  }
  return undefined;
}

const ROLLOUT_TIMEOUT_MS = 60_000;
const hung = (code: number): string =>
  code === 128 ? ` (killed after ${ROLLOUT_TIMEOUT_MS / 1000} s: a cohort device never reported a final job state)` : '';

type Doc = Record<string, unknown>;
const get = (doc: unknown, path: string): unknown =>
  path.split('.').reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Doc)[k] : undefined), doc);

interface RolloutDevice {
  inCohort: boolean;
  state: string;
  version?: string;
  reason?: string;
}
interface RolloutStatus {
  rolloutId: string;
  status: string;
  release: { version: string };
  devices: Record<string, RolloutDevice>;
}

describe(
  'lab: OTA rollout to three Connectors (real agents, mosquitto, rollout controller)',
  { skip: skipUnlessCi(skipReason()), timeout: 240_000 },
  () => {
    let lab: (OtaLab & { startSupervisors(): Promise<void> }) | undefined;
    let keys = '';
    const L = (): OtaLab => {
      if (!lab) throw new Error('lab not up');
      return lab;
    };

    /** The retained `connector/v1/<serial>/status` of every site, read with the controller's certificate. */
    async function retainedStatus(): Promise<Map<string, Doc>> {
      const l = L();
      const r = await exec(
        'ip',
        [
          'netns',
          'exec',
          l.dcNs,
          'mosquitto_sub',
          '-V',
          'mqttv5',
          '-h',
          DC_ADDR,
          '-p',
          '8883',
          '--cafile',
          l.pki.ca,
          '--cert',
          l.pki.controller.cert,
          '--key',
          l.pki.controller.key,
          '-t',
          'connector/v1/+/status',
          '-v',
          '-C',
          String(l.sites.length),
          '-W',
          '5',
        ],
        { allowFailure: true, timeoutMs: 10_000 },
      );
      const out = new Map<string, Doc>();
      for (const line of r.stdout.split('\n').filter(Boolean)) {
        const sp = line.indexOf(' ');
        const serial = line.slice(0, sp).split('/')[2] ?? '';
        out.set(serial, JSON.parse(line.slice(sp + 1)) as Doc);
      }
      return out;
    }

    /** One retained message (undefined when the topic holds none). */
    async function retained(topic: string): Promise<Doc | undefined> {
      const l = L();
      const r = await exec(
        'ip',
        [
          'netns',
          'exec',
          l.dcNs,
          'mosquitto_sub',
          '-V',
          'mqttv5',
          '-h',
          DC_ADDR,
          '-p',
          '8883',
          '--cafile',
          l.pki.ca,
          '--cert',
          l.pki.controller.cert,
          '--key',
          l.pki.controller.key,
          '-t',
          topic,
          '-C',
          '1',
          '-W',
          '3',
        ],
        { allowFailure: true, timeoutMs: 10_000 },
      );
      const line = r.stdout.split('\n').find(Boolean);
      return line ? (JSON.parse(line) as Doc) : undefined;
    }

    /** `connector-agent status --json` inside the site's namespace. */
    async function agentStatusCli(site: Site): Promise<Doc> {
      const r = await exec(
        'ip',
        [
          'netns',
          'exec',
          site.ns,
          process.execPath,
          '--import',
          'tsx',
          join(ROOT, 'src/agent/cli.ts'),
          'status',
          '--json',
          '--config',
          site.uci,
        ],
        {
          cwd: ROOT,
          timeoutMs: 30_000,
        },
      );
      return JSON.parse(r.stdout) as Doc;
    }

    async function rolloutStatus(stateFile: string): Promise<RolloutStatus> {
      const r = await L().connector(L().dcNs, ['ota', 'status', '--state', stateFile, '--json']);
      return JSON.parse(r.stdout) as RolloutStatus;
    }

    /** Writes the agent stand-in for `version` into the served tree, its manifest, and signs it. */
    async function release(version: string, script: string): Promise<{ manifest: string; sig: string }> {
      const l = L();
      mkdirSync(join(l.serveDir, version), { recursive: true });
      mkdirSync(l.releaseDir, { recursive: true });
      const artifact = join(l.serveDir, version, 'connector-agent');
      writeFileSync(artifact, script, { mode: 0o755 });
      const manifest = join(l.releaseDir, `release-${version}.json`);
      await l.connector(l.dcNs, [
        'release',
        'manifest',
        '--version',
        version,
        '--board',
        BOARD,
        '--min-version',
        FACTORY,
        '--artifact',
        `agent=${artifact}=https://${DC_ADDR}:${ARTIFACT_PORT}/${version}/connector-agent`,
        '--out',
        manifest,
      ]);
      await l.connector(l.dcNs, ['release', 'sign', '--key', join(keys, 'release.sec'), '--manifest', manifest]);
      return { manifest, sig: `${manifest}.sig` };
    }

    function rollout(rel: { manifest: string; sig: string }, stateFile: string, cohort: string, extra: readonly string[] = []) {
      const l = L();
      return l.connector(
        l.dcNs,
        [
          'ota',
          'rollout',
          '--release',
          rel.manifest,
          '--sig',
          rel.sig,
          '--pub',
          join(keys, 'release.pub'),
          '--devices',
          l.sites.map((s) => s.serial).join(','),
          '--cohort',
          cohort,
          '--fail-threshold',
          '1',
          '--state',
          stateFile,
          '--broker',
          l.brokerUrl,
          '--ca',
          l.pki.ca,
          '--cert',
          l.pki.controller.cert,
          '--key',
          l.pki.controller.key,
          ...extra,
        ],
        { allowFailure: true, timeoutMs: ROLLOUT_TIMEOUT_MS },
      );
    }

    async function tunnelsUp(sites: readonly Site[], what: string, timeoutMs = 30_000): Promise<void> {
      for (const s of sites) {
        await waitFor(`${what}: tunnel of ${s.serial} up`, timeoutMs, async () =>
          get(await L().agentStatus(s), 'tunnel.state') === 'up' ? true : undefined,
        );
      }
    }

    /** The supervisor's last start: which program it chose and what that program said first. */
    function lastStart(s: Site): { line: string; prog: string; announced: string } {
      const lines = readFileSync(s.log, 'utf8').split('\n');
      let i = lines.length - 1;
      while (i >= 0 && !(lines[i] ?? '').startsWith('supervisor: start #')) i--;
      const line = lines[i] ?? '';
      return { line, prog: /prog=(\S+)/.exec(line)?.[1] ?? '', announced: lines.slice(i + 1).find((l) => l.startsWith('stand-in ')) ?? '' };
    }

    const startCount = (s: Site): number => (readFileSync(s.log, 'utf8').match(/supervisor: start #/g) ?? []).length;

    before(async () => {
      keys = mkdtempSync(join(tmpdir(), 'ck-ota-keys-'));
      await exec(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'src/cli/connector.ts'), 'release', 'keygen', '--out', join(keys, 'release')],
        { cwd: ROOT },
      );
      lab = await openOtaLab({ pubKey: join(keys, 'release.pub'), factoryVersion: FACTORY });
      await lab.startSupervisors();
      try {
        await tunnelsUp(lab.sites, 'factory agents', 60_000);
        // The OTA channel is ready and the factory version is what each device announces.
        await waitFor(
          'retained status 1.0.0 from all three',
          30_000,
          async () => {
            const st = await retainedStatus();
            return L().sites.every((s) => st.get(s.serial)?.['version'] === FACTORY && st.get(s.serial)?.['online'] === true)
              ? true
              : undefined;
          },
          500,
        );
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${lab.logTails()}`);
      }
    });

    after(async () => {
      await lab?.down();
      if (keys) rmSync(keys, { recursive: true, force: true });
    });

    it('rolls a new agent out to a 1-device cohort, then all three: versions reported, health checks pass, tunnels up', async (t) => {
      const l = L();
      const rel = await release(GOOD, agentStandIn(GOOD));
      const stateFile = join(l.dir, `rollout-${GOOD}.json`);
      const startsBefore = new Map(l.sites.map((s) => [s.serial, startCount(s)]));
      try {
        // 34 % of 3 = one device (rounded down, at least one).
        let t0 = Date.now();
        const r1 = await rollout(rel, stateFile, '34%');
        t.diagnostic(`cohort 34% (1 device): rollout command took ${Date.now() - t0} ms`);
        assert.equal(r1.code, 0, `rollout (cohort 34%) exit ${r1.code}${hung(r1.code)}: ${r1.stderr.slice(-2000)}`);
        const s1 = await rolloutStatus(stateFile);
        const cohort1 = Object.entries(s1.devices).filter(([, d]) => d.inCohort);
        assert.equal(cohort1.length, 1, 'a 34 % cohort of three is one device');
        const [firstSerial, firstDev] = cohort1[0] ?? ['', undefined];
        assert.equal(firstDev?.state, 'succeeded');
        assert.equal(firstDev?.version, GOOD);
        const outside = Object.entries(s1.devices)
          .filter(([, d]) => !d.inCohort)
          .map(([s]) => s);
        const st1 = await retainedStatus();
        for (const serial of outside) assert.equal(st1.get(serial)?.['version'], FACTORY, `${serial} outside the cohort keeps ${FACTORY}`);
        assert.equal(st1.get(firstSerial)?.['version'], GOOD);

        // Widen to the whole fleet with the same state file.
        t0 = Date.now();
        const r2 = await rollout(rel, stateFile, '100%');
        t.diagnostic(`widened to 100% (2 more devices): rollout command took ${Date.now() - t0} ms`);
        assert.equal(r2.code, 0, `rollout (cohort 100%) exit ${r2.code}${hung(r2.code)}: ${r2.stderr.slice(-2000)}`);
        const s2 = await rolloutStatus(stateFile);
        assert.equal(s2.status, 'completed');
        const human = (await l.connector(l.dcNs, ['ota', 'status', '--state', stateFile])).stdout;
        t.diagnostic(human.trimEnd().split('\n').join(' | '));
        for (const s of l.sites) {
          const d = s2.devices[s.serial];
          assert.equal(d?.inCohort, true);
          assert.equal(d?.state, 'succeeded', `${s.serial}: ${JSON.stringify(d)}`);
          assert.equal(d?.version, GOOD);
          assert.match(human, new RegExp(`${s.serial}\\s+succeeded\\s+${GOOD.replace(/\./g, '\\.')}`));
        }

        // Retained MQTT status: online, the new version, the job succeeded.
        const st2 = await retainedStatus();
        for (const s of l.sites) {
          const st = st2.get(s.serial);
          assert.equal(st?.['online'], true, `${s.serial} retained status: ${JSON.stringify(st)}`);
          assert.equal(st?.['version'], GOOD, `${s.serial} retained status: ${JSON.stringify(st)}`);
        }

        // The new agent really runs: current -> slots/b, the supervisor restarted it from there, the
        // stand-in of the new version announced itself, and the tunnel is up on the new process.
        await tunnelsUp(l.sites, 'after the switch');
        for (const s of l.sites) {
          assert.equal(readFileSync(join(s.slots, 'slots/b/VERSION'), 'utf8').trim(), GOOD);
          assert.equal((await exec('readlink', [join(s.slots, 'current')])).stdout.trim(), 'slots/b');
          assert.ok(startCount(s) > (startsBefore.get(s.serial) ?? 0), `${s.serial}: the supervisor restarted the agent`);
          // The agent that runs now is the slot's (the init script falls back to the image's binary when
          // the slot's file is not executable, which would leave the device on the old agent).
          const last = lastStart(s);
          assert.equal(
            last.prog,
            join(s.slots, 'current/connector-agent'),
            `${s.serial}: the supervisor ran the slot's agent, not the image's (${last.line})`,
          );
          assert.equal(last.announced, `stand-in connector-agent ${GOOD} starting`, `${s.serial}: the new agent runs`);
          const doc = await agentStatusCli(s);
          assert.equal(get(doc, 'tunnel.state'), 'up', `${s.serial}: agent status ${JSON.stringify(doc['tunnel'])}`);
          assert.equal(get(doc, 'ota.state'), 'ready', `${s.serial}: ota ${JSON.stringify(doc['ota'])}`);
          const persisted = JSON.parse(readFileSync(join(s.stateDir, 'state.json'), 'utf8')) as Doc;
          assert.equal(get(persisted, 'state.phase'), 'idle');
        }
        // Each unit's health, retained on the OTA channel for the console: the status socket's tunnel,
        // counters and tables, within one publishing period (10 s) of the tunnel coming up.
        for (const s of l.sites) {
          const health = await waitFor(
            `${s.serial}: its health retained with the tunnel up`,
            25_000,
            async () => {
              const h = await retained(`connector/v1/${s.serial}/health`);
              return get(h, 'tunnel.state') === 'up' ? h : undefined;
            },
            1_000,
          );
          assert.equal(health['phase'], 'running');
          assert.ok(Array.isArray(health['macTable']) && typeof health['macTotal'] === 'number', JSON.stringify(health));
          assert.ok(get(health, 'counters.core') !== undefined, JSON.stringify(health['counters']));
        }
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${l.logTails()}`);
      }
    });

    it('a release whose agent cannot bring the tunnel up rolls back by itself and pauses the rollout', async (t) => {
      const l = L();
      const victim = l.sites[0];
      assert.ok(victim);
      // The bad "binary" runs the agent with a config whose headend nobody answers on: the health check
      // (tunnel up within health_deadline_s) cannot pass.
      const deadUci = join(victim.dir, 'connector-dead-headend.uci');
      writeFileSync(deadUci, l.deadHeadendUci(victim));
      const rel = await release(BAD, agentStandIn(BAD, { configOverride: deadUci }));
      const stateFile = join(l.dir, `rollout-${BAD}.json`);
      try {
        const t0 = Date.now();
        const r = await rollout(rel, stateFile, victim.serial, ['--max-parallel', '1']);
        t.diagnostic(`bad release: rollout command ended after ${Date.now() - t0} ms (health deadline 8 s)`);
        assert.equal(r.code, 3, `rollout should pause at the threshold (exit 3), got ${r.code}${hung(r.code)}: ${r.stderr.slice(-2000)}`);
        const s = await rolloutStatus(stateFile);
        assert.equal(s.status, 'paused');
        const d = s.devices[victim.serial];
        assert.equal(d?.state, 'rolled-back', JSON.stringify(d));
        assert.equal(d?.reason, 'health-check-failed');
        assert.equal(d?.version, GOOD, 'after the rollback the device runs the previous version');

        // The previous agent, started again by the supervisor, announces itself with the rolled-back job.
        let st: Doc | undefined;
        await waitFor(
          `retained status of ${victim.serial} back on ${GOOD}`,
          30_000,
          async () => {
            st = (await retainedStatus()).get(victim.serial);
            return st?.['online'] === true && st['version'] === GOOD ? true : undefined;
          },
          500,
        ).catch((e: unknown) => {
          throw new Error(`${(e as Error).message}; last: ${JSON.stringify(st)}`);
        });
        // The device's retained job-state keeps its own account of the job: rolled back, why, what it runs.
        const report = await retained(`connector/v1/${victim.serial}/job-state`);
        assert.equal(report?.['jobId'], s.rolloutId, JSON.stringify(report));
        assert.equal(report?.['state'], 'rolled-back', JSON.stringify(report));
        assert.equal(report?.['reason'], 'health-check-failed', JSON.stringify(report));
        assert.equal(report?.['version'], GOOD, JSON.stringify(report));
        assert.equal(report?.['targetVersion'], BAD, JSON.stringify(report));
        assert.equal(
          (await exec('readlink', [join(victim.slots, 'current')])).stdout.trim(),
          'slots/b',
          'current points back to the good slot',
        );
        assert.match(
          readFileSync(victim.log, 'utf8'),
          new RegExp(`stand-in connector-agent ${BAD.replace(/\./g, '\\.')} starting`),
          'the bad agent did run',
        );
        const last = lastStart(victim);
        assert.equal(last.prog, join(victim.slots, 'current/connector-agent'), `the slot's agent runs again (${last.line})`);
        assert.equal(last.announced, `stand-in connector-agent ${GOOD} starting`, 'the previous agent runs again');
        await tunnelsUp([victim], 'after the rollback');
        // Devices outside the cohort never saw the bad release.
        const all = await retainedStatus();
        for (const o of l.sites.filter((x) => x !== victim)) assert.equal(all.get(o.serial)?.['version'], GOOD);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${l.logTails()}`);
      }
    });
  },
);
