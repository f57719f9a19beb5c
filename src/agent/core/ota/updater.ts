// SPDX-License-Identifier: UNLICENSED
// The device updater: takes a job, checks it, and drives the persisted phases in state.ts to the end.
// Every phase's action is idempotent and the state is persisted before the next action starts, so a
// crash anywhere is recovered by `resume()` re-running the phase it was in. The phase machine is
// `transition` (state.ts); this orchestrator runs each phase's action through ports: the state file,
// the download cache, the A/B slots, sysupgrade, the health check and the restart. adapters/ota/updater.ts
// wires the real ones.
import { errorMessage } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/log.js';
import type { UsignPublicKey } from '../../../shared/usign/index.js';
import type { JobDocument, JobState, JobStateReport } from '../../../shared/ota/protocol.js';
import { compareVersions } from '../../../shared/ota/version.js';
import { checkRelease } from './verify-release.js';
import {
  progressBucket,
  transition,
  withHistory,
  type ActiveJob,
  type PersistedUpdater,
  type SlotName,
  type Transition,
  type UpdaterState,
} from './state.js';

/** The A/B agent slots: `current` points to one of them. */
export interface SlotStore {
  current(): Promise<SlotName>;
  versionOf(slot: SlotName): Promise<string | undefined>;
  /** Replaces `slot` with a fresh copy of `artifactFile` named `name`, plus VERSION and the manifest. */
  install(slot: SlotName, artifactFile: string, name: string, version: string, manifest: Buffer): Promise<void>;
  switchTo(slot: SlotName): Promise<void>;
}

/** The persisted updater state (state.json): a missing or corrupt file loads as INITIAL. */
export interface UpdaterStore {
  load(): Promise<PersistedUpdater>;
  save(p: PersistedUpdater): Promise<void>;
}

/** Where artifacts are downloaded and checked, outside the slot tree. */
export interface ArtifactCache {
  /** The file the artifact of `job` is downloaded to (the slot install and sysupgrade read it). */
  fileOf(job: ActiveJob): string;
  /** Downloads from `url`, resuming what is on disk; rejects on failure. */
  download(job: ActiveJob, url: string, onProgress: (bytes: number, total: number) => void): Promise<{ resumedFrom: number }>;
  /** sha256 and size of the downloaded file; rejects when it is missing. */
  hash(job: ActiveJob): Promise<{ sha256: string; size: number }>;
  /** Forgets every download (a job ended). */
  clear(): Promise<void>;
}

export interface UpdaterOptions {
  readonly serial: string;
  readonly board: string;
  readonly osCompatVersion?: string;
  /** Two slots for key rotation; a release signed by either is accepted. */
  readonly trustedKeys: readonly UsignPublicKey[];
  readonly slots: SlotStore;
  readonly store: UpdaterStore;
  readonly artifacts: ArtifactCache;
  readonly report: (r: JobStateReport) => void | Promise<void>;
  /** Tunnel up (or whatever "healthy" means) for the version now in `current`. */
  readonly healthy: (version: string) => Promise<boolean>;
  readonly healthDeadlineMs: number;
  readonly healthPollMs?: number;
  /** Makes the new `current` run: the agent exits for procd to restart it; tests may no-op. */
  readonly restart: (reason: 'switched' | 'rolled-back') => Promise<void>;
  /** Runs `<cmd> -T <image>` then `<cmd> <image>`; resolves with the exit code. */
  readonly sysupgrade: (args: readonly string[]) => Promise<number>;
  readonly log: Logger;
  /** Wall-clock time for reports and the health deadline. */
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
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

export function runUpdater(o: UpdaterOptions): Updater {
  const { now, sleep } = o;
  const at = o.at ?? (async () => {});
  const log = o.log.child({ serial: o.serial });
  let chain: Promise<unknown> = Promise.resolve();
  // True while this process runs a job that may reach the flash; after a restart os-rebooting means "booted".
  let flashing = false;

  const serialize = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn, fn);
    chain = p.catch(() => undefined);
    return p;
  };

  const load = (): Promise<PersistedUpdater> => o.store.load();
  const save = (p: PersistedUpdater): Promise<void> => o.store.save(p);

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
    const r: JobStateReport = {
      jobId: job.jobId,
      state,
      version: await runningVersion(),
      targetVersion: job.version,
      at: now().toISOString(),
      ...extra,
    };
    log.info('ota job state', { jobId: job.jobId, state, version: r.version, reason: r.reason, detail: r.detail });
    try {
      await o.report(r);
    } catch (e) {
      // Reporting is best effort: the retained state is re-sent on the next change or reconnect.
      log.warn('ota report failed', { jobId: job.jobId, error: errorMessage(e) });
    }
  }

  const partFile = (job: ActiveJob): string => o.artifacts.fileOf(job);

  async function finish(
    p: PersistedUpdater,
    job: ActiveJob,
    state: JobState,
    extra: Partial<JobStateReport> = {},
  ): Promise<PersistedUpdater> {
    const next = withHistory(p, { jobId: job.jobId, state, version: await runningVersion(), at: now().toISOString() });
    await save(next);
    await o.artifacts.clear();
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

  async function apply(p: PersistedUpdater, t: Transition): Promise<PersistedUpdater> {
    if ('next' in t) return enter(p, t.next);
    const s = p.state;
    if (s.phase === 'idle') return p;
    return finish(p, s.job, t.done, { ...(t.reason ? { reason: t.reason } : {}), ...(t.detail ? { detail: t.detail } : {}) });
  }

  /** Runs one phase's action (the I/O) and applies the pure transition its outcome leads to. */
  async function step(p: PersistedUpdater): Promise<PersistedUpdater> {
    const s = p.state;
    switch (s.phase) {
      case 'idle':
        return p;
      case 'downloading': {
        const job = s.job;
        let lastBucket = -1;
        let lastError = '';
        for (const [i, url] of [...job.artifact.urls, ...job.artifact.urls, ...job.artifact.urls].entries()) {
          try {
            const r = await o.artifacts.download(job, url, (bytes, total) => {
              const b = progressBucket(bytes, total);
              if (b === lastBucket) return;
              lastBucket = b;
              void send(job, 'downloading', { progress: { bytes, total } });
              void at(`downloading:${b}`);
            });
            if (r.resumedFrom > 0) log.info('ota download resumed', { jobId: job.jobId, from: r.resumedFrom });
            return apply(p, transition(s, { kind: 'downloaded' }));
          } catch (e) {
            lastError = errorMessage(e);
            log.warn('ota download attempt failed', { jobId: job.jobId, url, attempt: i + 1, error: lastError });
            await sleep(Math.min(500 * 2 ** i, 10_000));
          }
        }
        return apply(p, transition(s, { kind: 'download-failed', detail: lastError }));
      }
      case 'verifying': {
        const a = s.job.artifact;
        const got = await o.artifacts.hash(s.job).catch(() => ({ sha256: '', size: -1 }));
        if (got.sha256 !== a.sha256 || got.size !== a.size) {
          const detail = `downloaded ${a.name} has sha256 ${got.sha256 || 'none'} (${got.size} bytes), manifest says ${a.sha256} (${a.size} bytes)`;
          return apply(p, transition(s, { kind: 'hash-mismatch', detail }));
        }
        return apply(p, transition(s, { kind: 'hash-ok', currentSlot: await o.slots.current() }));
      }
      case 'installing': {
        try {
          await o.slots.install(s.to, partFile(s.job), s.job.artifact.name, s.job.version, Buffer.from(s.job.manifest, 'base64'));
        } catch (e) {
          return apply(p, transition(s, { kind: 'install-failed', detail: errorMessage(e) }));
        }
        return apply(p, transition(s, { kind: 'installed' }));
      }
      case 'switching': {
        await at('switching:before-rename');
        await o.slots.switchTo(s.to);
        await at('switching:after-rename');
        const next = await apply(p, transition(s, { kind: 'switched' }));
        await o.restart('switched');
        return next;
      }
      case 'health-check': {
        if ((await o.slots.current()) !== s.to) await o.slots.switchTo(s.to);
        // Counted (and persisted) before the check starts, so a crash during it uses up an attempt.
        const t = transition(s, { kind: 'health-start' });
        if (!('next' in t) || t.next.phase !== 'health-check') return apply(p, t);
        const counted: PersistedUpdater = { ...p, state: t.next };
        await save(counted);
        await at('health-check:polling');
        const deadline = now().getTime() + o.healthDeadlineMs;
        let ok = false;
        do {
          ok = await o.healthy(s.job.version).catch(() => false);
          if (ok) break;
          await sleep(o.healthPollMs ?? 250);
        } while (now().getTime() < deadline);
        return apply(
          counted,
          transition(t.next, ok ? { kind: 'healthy' } : { kind: 'unhealthy', detail: `not healthy within ${o.healthDeadlineMs} ms` }),
        );
      }
      case 'rolling-back': {
        await o.slots.switchTo(s.from);
        const next = await apply(p, transition(s, { kind: 'switched-back' }));
        await o.restart('rolled-back');
        return next;
      }
      case 'os-upgrading': {
        const code = await o.sysupgrade(['-T', partFile(s.job)]).catch(() => -1);
        return apply(p, transition(s, { kind: 'dry-run-exit', code }));
      }
      case 'os-rebooting':
        if (!flashing) return apply(p, transition(s, { kind: 'booted' }));
        flashing = false;
        // On a real device this flashes and reboots; the next boot resumes here and reports success.
        {
          const code = await o.sysupgrade([partFile(s.job)]).catch(() => -1);
          return code === 0 ? p : apply(p, transition(s, { kind: 'flash-exit', code }));
        }
    }
  }

  async function drive(p: PersistedUpdater): Promise<PersistedUpdater> {
    let cur = p;
    while (cur.state.phase !== 'idle') {
      const wasFlash = cur.state.phase === 'os-rebooting' && flashing;
      cur = await step(cur);
      if (wasFlash && cur.state.phase === 'os-rebooting') return cur; // flashed; wait for the reboot
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
        await drive(p);
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
        if (compareVersions(m.version, version) === 0 && doc.force !== true) {
          // A release is installed once: the same signed job replayed under a new id must not reinstall
          // and restart the agent. The unit already runs it, which is what the rollout wanted.
          await save(withHistory(p, { jobId: doc.jobId, state: 'succeeded', version, at: now().toISOString() }));
          await send({ jobId: doc.jobId, version: m.version }, 'succeeded', {
            reason: 'already-installed',
            detail: `this unit already runs ${version}; the job sets "force": true to reinstall`,
          });
          log.info('ota job: version already installed', { jobId: doc.jobId, version });
          return 'succeeded';
        }
        const artifact = m.artifacts.find((a) => a.kind === 'sysupgrade') ?? m.artifacts.find((a) => a.kind === 'agent');
        if (!artifact) throw new TypeError('unreachable: the manifest parser accepted a release without artifacts');
        const job: ActiveJob = {
          jobId: doc.jobId,
          rolloutId: doc.rolloutId,
          version: m.version,
          fromVersion: version,
          manifest: doc.manifest,
          artifact,
        };
        log.info('ota job accepted', { jobId: doc.jobId, version: m.version, keyId: check.keyId, kind: artifact.kind });
        flashing = true;
        let end: PersistedUpdater;
        try {
          end = await drive(await enter(p, { phase: 'downloading', job }));
        } finally {
          flashing = false;
        }
        if (end.state.phase === 'os-rebooting') return 'rebooting';
        return end.history.find((h) => h.jobId === doc.jobId)?.state ?? 'failed';
      }),
  };
}
