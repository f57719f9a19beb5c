// SPDX-License-Identifier: UNLICENSED
// The device updater: takes a job, checks it, and drives the persisted phases in state.ts to the end.
// Every phase's action is idempotent and the state is persisted before the next action starts, so a
// crash anywhere is recovered by `resume()` re-running the phase it was in. I/O goes through ports so
// the agent, the lab and tests wire real or stand-in implementations.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { UsignPublicKey } from '../../shared/usign/index.js';
import type { JobDocument, JobState, JobStateReport } from '../protocol.js';
import { checkRelease } from '../verify-release.js';
import { downloadWithResume } from './downloader.js';
import { sha256File, type SlotStore } from './slots.js';
import {
  INITIAL,
  MAX_HEALTH_ATTEMPTS,
  otherSlot,
  parsePersisted,
  progressBucket,
  withHistory,
  type ActiveJob,
  type PersistedUpdater,
  type UpdaterState,
} from './state.js';
import { writeFileAtomic } from '../atomic-file.js';

export interface UpdaterOptions {
  readonly serial: string;
  readonly board: string;
  readonly osCompatVersion?: string;
  /** Two slots for key rotation; a release signed by either is accepted. */
  readonly trustedKeys: readonly UsignPublicKey[];
  readonly slots: SlotStore;
  /** Holds state.json and the download cache; outside the slot tree. */
  readonly stateDir: string;
  readonly report: (r: JobStateReport) => void | Promise<void>;
  /** Tunnel up (or whatever "healthy" means) for the version now in `current`. */
  readonly healthy: (version: string) => Promise<boolean>;
  readonly healthDeadlineMs: number;
  readonly healthPollMs?: number;
  /** Makes the new `current` run: the agent exits for procd to restart it; tests may no-op. */
  readonly restart: (reason: 'switched' | 'rolled-back') => Promise<void>;
  /** Runs `<cmd> -T <image>` then `<cmd> <image>`; resolves with the exit code. */
  readonly sysupgrade: (args: readonly string[]) => Promise<number>;
  readonly downloadCa?: string | Buffer;
  readonly log: Logger;
  readonly now?: () => Date;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Test seam: awaited at each step boundary after the state is persisted (kill -9 tests). */
  readonly at?: (point: string) => Promise<void>;
}

export interface Updater {
  /** Finishes whatever a previous run left half-done. Call once at start-up, before `handleJob`. */
  resume(): Promise<void>;
  handleJob(job: JobDocument): Promise<JobState>;
  runningVersion(): Promise<string>;
  state(): Promise<PersistedUpdater>;
}

export function createUpdater(o: UpdaterOptions): Updater {
  const stateFile = join(o.stateDir, 'state.json');
  const downloadDir = join(o.stateDir, 'download');
  const now = o.now ?? (() => new Date());
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const at = o.at ?? (async () => {});
  const log = o.log.child({ serial: o.serial });
  let chain: Promise<unknown> = Promise.resolve();

  const serialize = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn, fn);
    chain = p.catch(() => undefined);
    return p;
  };

  async function load(): Promise<PersistedUpdater> {
    try {
      return parsePersisted(await readFile(stateFile, 'utf8')) ?? INITIAL;
    } catch {
      return INITIAL;
    }
  }
  async function save(p: PersistedUpdater): Promise<void> {
    await mkdir(o.stateDir, { recursive: true });
    await writeFileAtomic(stateFile, JSON.stringify(p, null, 2) + '\n');
  }

  async function runningVersion(): Promise<string> {
    return (await o.slots.versionOf(await o.slots.current())) ?? '0.0.0';
  }

  // Reports leave in the order they were made, even the fire-and-forget progress ones.
  let reports: Promise<void> = Promise.resolve();
  function send(job: Pick<ActiveJob, 'jobId' | 'version'>, state: JobState, extra: Partial<JobStateReport> = {}): Promise<void> {
    reports = reports.then(() => sendNow(job, state, extra));
    return reports;
  }
  async function sendNow(job: Pick<ActiveJob, 'jobId' | 'version'>, state: JobState, extra: Partial<JobStateReport>): Promise<void> {
    const r: JobStateReport = { jobId: job.jobId, state, version: await runningVersion(), targetVersion: job.version, at: now().toISOString(), ...extra };
    log.info('ota job state', { jobId: job.jobId, state, version: r.version, reason: r.reason, detail: r.detail });
    try {
      await o.report(r);
    } catch (e) {
      // Reporting is best effort: the retained state is re-sent on the next change or reconnect.
      log.warn('ota report failed', { jobId: job.jobId, error: errorMessage(e) });
    }
  }

  const partFile = (job: ActiveJob): string => join(downloadDir, `${job.jobId}-${job.artifact.name}.part`);

  async function finish(p: PersistedUpdater, job: ActiveJob, state: JobState, extra: Partial<JobStateReport> = {}): Promise<PersistedUpdater> {
    const next = withHistory(p, { jobId: job.jobId, state, version: await runningVersion(), at: now().toISOString() });
    await save(next);
    await rm(downloadDir, { recursive: true, force: true });
    await send(job, state, extra);
    return next;
  }

  async function enter(p: PersistedUpdater, state: UpdaterState): Promise<PersistedUpdater> {
    const next: PersistedUpdater = { ...p, state };
    await save(next);
    if (state.phase !== 'idle') await send(state.job, phaseReport(state));
    await at(state.phase);
    return next;
  }

  function phaseReport(s: Exclude<UpdaterState, { phase: 'idle' }>): JobState {
    switch (s.phase) {
      case 'os-upgrading':
        return 'installing';
      case 'os-rebooting':
        return 'rebooting';
      case 'rolling-back':
        return 'health-check';
      default:
        return s.phase;
    }
  }

  /** Runs one phase's action and returns the persisted state that follows it. */
  async function step(p: PersistedUpdater): Promise<PersistedUpdater> {
    const s = p.state;
    switch (s.phase) {
      case 'idle':
        return p;
      case 'downloading': {
        const job = s.job;
        await mkdir(downloadDir, { recursive: true });
        let lastBucket = -1;
        let lastError = '';
        for (const [i, url] of [...job.artifact.urls, ...job.artifact.urls, ...job.artifact.urls].entries()) {
          try {
            const r = await downloadWithResume({
              url,
              file: partFile(job),
              size: job.artifact.size,
              ...(o.downloadCa !== undefined ? { ca: o.downloadCa } : {}),
              onProgress: (bytes, total) => {
                const b = progressBucket(bytes, total);
                if (b === lastBucket) return;
                lastBucket = b;
                void send(job, 'downloading', { progress: { bytes, total } });
                void at(`downloading:${b}`);
              },
            });
            if (r.resumedFrom > 0) log.info('ota download resumed', { jobId: job.jobId, from: r.resumedFrom });
            return enter(p, { phase: 'verifying', job });
          } catch (e) {
            lastError = errorMessage(e);
            log.warn('ota download attempt failed', { jobId: job.jobId, url, attempt: i + 1, error: lastError });
            await sleep(Math.min(500 * 2 ** i, 10_000));
          }
        }
        return finish(p, job, 'failed', { reason: 'download-failed', detail: lastError });
      }
      case 'verifying': {
        const job = s.job;
        const got = await sha256File(partFile(job)).catch(() => ({ sha256: '', size: -1 }));
        if (got.sha256 !== job.artifact.sha256 || got.size !== job.artifact.size) {
          return finish(p, job, 'rejected', {
            reason: 'artifact-mismatch',
            detail: `downloaded ${job.artifact.name} has sha256 ${got.sha256 || 'none'} (${got.size} bytes), manifest says ${job.artifact.sha256} (${job.artifact.size} bytes)`,
          });
        }
        if (job.artifact.kind === 'sysupgrade') return enter(p, { phase: 'os-upgrading', job });
        const from = await o.slots.current();
        return enter(p, { phase: 'installing', job, from, to: otherSlot(from) });
      }
      case 'installing': {
        try {
          await o.slots.install(s.to, partFile(s.job), s.job.artifact.name, s.job.version, Buffer.from(s.job.manifest, 'base64'));
        } catch (e) {
          return finish(p, s.job, 'failed', { reason: 'install-failed', detail: errorMessage(e) });
        }
        return enter(p, { phase: 'switching', job: s.job, from: s.from, to: s.to });
      }
      case 'switching': {
        await at('switching:before-rename');
        await o.slots.switchTo(s.to);
        await at('switching:after-rename');
        const next = await enter(p, { phase: 'health-check', job: s.job, from: s.from, to: s.to, attempts: 0 });
        await o.restart('switched');
        return next;
      }
      case 'health-check': {
        if ((await o.slots.current()) !== s.to) await o.slots.switchTo(s.to);
        const attempts = s.attempts + 1;
        if (attempts > MAX_HEALTH_ATTEMPTS) {
          return enter(p, { phase: 'rolling-back', job: s.job, from: s.from, to: s.to, detail: `no healthy start in ${MAX_HEALTH_ATTEMPTS} attempts` });
        }
        const counted: PersistedUpdater = { ...p, state: { ...s, attempts } };
        await save(counted);
        await at('health-check:polling');
        const deadline = Date.now() + o.healthDeadlineMs;
        let ok = false;
        do {
          ok = await o.healthy(s.job.version).catch(() => false);
          if (ok) break;
          await sleep(o.healthPollMs ?? 250);
        } while (Date.now() < deadline);
        if (ok) return finish(counted, s.job, 'succeeded');
        return enter(counted, { phase: 'rolling-back', job: s.job, from: s.from, to: s.to, detail: `not healthy within ${o.healthDeadlineMs} ms` });
      }
      case 'rolling-back': {
        await o.slots.switchTo(s.from);
        const next = await finish(p, s.job, 'rolled-back', { reason: 'health-check-failed', detail: s.detail });
        await o.restart('rolled-back');
        return next;
      }
      case 'os-upgrading': {
        const image = partFile(s.job);
        const test = await o.sysupgrade(['-T', image]).catch(() => -1);
        if (test !== 0) return finish(p, s.job, 'failed', { reason: 'sysupgrade-failed', detail: `sysupgrade -T exited ${test}` });
        const next = await enter(p, { phase: 'os-rebooting', job: s.job });
        // On a real device this flashes and reboots; the next boot resumes in os-rebooting.
        const code = await o.sysupgrade([image]).catch(() => -1);
        if (code !== 0) return finish(next, s.job, 'failed', { reason: 'sysupgrade-failed', detail: `sysupgrade exited ${code}` });
        return next;
      }
      case 'os-rebooting':
        // Running again after the flash means the new OS booted and brought the agent up.
        return finish(p, s.job, 'succeeded');
    }
  }

  async function drive(p: PersistedUpdater, stopAtRebooting: boolean): Promise<PersistedUpdater> {
    let cur = p;
    while (cur.state.phase !== 'idle') {
      if (stopAtRebooting && cur.state.phase === 'os-rebooting') return cur;
      cur = await step(cur);
    }
    return cur;
  }

  return {
    runningVersion,
    state: load,
    resume: () =>
      serialize(async () => {
        const p = await load();
        if (p.state.phase !== 'idle') log.info('ota resuming', { phase: p.state.phase, jobId: p.state.job.jobId });
        await drive(p, false);
      }),
    handleJob: (doc) =>
      serialize(async (): Promise<JobState> => {
        const p = await load();
        const seen = p.history.find((h) => h.jobId === doc.jobId);
        if (seen) return seen.state; // redelivery of a finished job
        if (p.state.phase !== 'idle') {
          log.warn('ota job ignored: another job is in progress', { jobId: doc.jobId, busyWith: p.state.job.jobId });
          return 'queued';
        }
        const version = await runningVersion();
        const manifestBytes = Buffer.from(doc.manifest, 'base64');
        const check = checkRelease(manifestBytes, doc.signature, o.trustedKeys, {
          board: o.board,
          version,
          ...(o.osCompatVersion !== undefined ? { osCompatVersion: o.osCompatVersion } : {}),
        });
        if (!check.ok) {
          await save(withHistory(p, { jobId: doc.jobId, state: 'rejected', version, at: now().toISOString() }));
          await send({ jobId: doc.jobId, version }, 'rejected', { reason: check.reason, detail: check.detail });
          return 'rejected';
        }
        const m = check.manifest;
        const artifact = m.artifacts.find((a) => a.kind === 'sysupgrade') ?? m.artifacts.find((a) => a.kind === 'agent');
        if (!artifact) throw new Error('unreachable: manifest without artifacts');
        const job: ActiveJob = { jobId: doc.jobId, rolloutId: doc.rolloutId, version: m.version, fromVersion: version, manifest: doc.manifest, artifact };
        log.info('ota job accepted', { jobId: doc.jobId, version: m.version, keyId: check.keyId, kind: artifact.kind });
        const end = await drive(await enter(p, { phase: 'downloading', job }), true);
        if (end.state.phase === 'os-rebooting') return 'rebooting';
        return end.history.find((h) => h.jobId === doc.jobId)?.state ?? 'failed';
      }),
  };
}
