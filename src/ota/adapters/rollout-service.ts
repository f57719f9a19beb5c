// SPDX-License-Identifier: UNLICENSED
// The rollout controller as a service (`connector ota controller`): every rollout in a directory of state
// files, each run by its own loop over one broker client, started, paused, resumed and widened through
// the operations its API (core/rollout-api.ts) calls. Releases come from a directory of signed manifests;
// a release whose signature does not verify under the trusted keys is never offered and never started.
// An operator's command is queued to the rollout's loop and answered once the loop has applied it, so
// the loop stays the only writer of its state file.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConnectorError, errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { parseReleaseManifest } from '../../shared/ota/manifest.js';
import { assertUsign, type UsignPublicKey } from '../../shared/usign/index.js';
import type { ReleaseInfo, RolloutOps } from '../core/rollout-api.js';
import { assertNoOtherActive, pauseRollout, resumeRollout, widenRollout } from '../core/rollout-control.js';
import { runRolloutLoop, type RolloutChannel } from '../core/rollout-run.js';
import { createRollout, parseRolloutState, type RolloutState } from '../core/rollout-state.js';
import { rolloutStateFile } from './files.js';

export interface RolloutServiceOptions {
  /** The rollout state files, one `<rolloutId>.json` each (the console's rolloutDir reads the same). */
  readonly dir: string;
  /** Signed release manifests: `NAME.json` beside `NAME.json.sig`. */
  readonly releasesDir: string;
  readonly keys: readonly UsignPublicKey[];
  /** The serials a new rollout covers. */
  readonly fleet: () => Promise<readonly string[]>;
  /** A fresh channel for each loop (they share one broker client). */
  readonly channel: () => RolloutChannel;
  readonly log: Logger;
  readonly now?: () => Date;
  readonly wait?: (ms: number) => Promise<void>;
  readonly tickMs?: number;
}

interface Release extends ReleaseInfo {
  bytes: Buffer;
  signature: string;
}

type Command = { apply: (s: RolloutState) => RolloutState; done: (s: RolloutState | Error) => void };

interface Runner {
  queue: Command[];
  abort: AbortController;
  ended: Promise<void>;
}

export interface RolloutService {
  readonly ops: RolloutOps;
  close(): Promise<void>;
}

const ID_FILE = /^[A-Za-z0-9._-]{1,64}\.json$/;

export async function startRolloutService(o: RolloutServiceOptions): Promise<RolloutService> {
  const now = o.now ?? (() => new Date());
  const states = new Map<string, RolloutState>();
  const runners = new Map<string, Runner>();
  const problems = new Map<string, string>();
  let closing = false;

  async function releases(): Promise<Release[]> {
    const names = (await readdir(o.releasesDir)).filter((n) => n.endsWith('.json')).sort();
    const out: Release[] = [];
    for (const name of names) {
      try {
        const bytes = await readFile(join(o.releasesDir, name));
        const signature = await readFile(join(o.releasesDir, `${name}.sig`), 'utf8');
        assertUsign(bytes, signature, o.keys);
        const m = parseReleaseManifest(bytes);
        const sha = createHash('sha256').update(bytes).digest('hex');
        out.push({ name, version: m.version, manifestSha256: sha, createdAt: m.createdAt, bytes, signature });
      } catch (e) {
        o.log.warn('release not offered', { release: name, error: errorMessage(e) });
      }
    }
    return out;
  }

  const others = (): RolloutState[] => [...states.values()];

  function get(id: string): RolloutState {
    const s = states.get(id);
    if (!s) throw new ConnectorError('CK_ERR_USAGE', `no rollout ${id}`);
    return s;
  }

  function run(state: RolloutState, rel: Release): void {
    const runner: Runner = { queue: [], abort: new AbortController(), ended: Promise.resolve() };
    runners.set(state.rolloutId, runner);
    runner.ended = runRolloutLoop({
      channel: o.channel(),
      store: rolloutStateFile(join(o.dir, `${state.rolloutId}.json`)),
      initial: state,
      manifest: rel.bytes,
      signature: rel.signature,
      log: o.log,
      now,
      wait: o.wait ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
      ...(o.tickMs !== undefined ? { tickMs: o.tickMs } : {}),
      signal: runner.abort.signal,
      onChange: (s) => states.set(s.rolloutId, s),
      control: (s) => {
        let next = s;
        for (const c of runner.queue.splice(0)) {
          try {
            next = c.apply(next);
            // Seen at once by the next command of another rollout (one active at a time).
            states.set(next.rolloutId, next);
            c.done(next);
          } catch (e) {
            c.done(e as Error);
          }
        }
        return next;
      },
    })
      .then(
        () => undefined,
        (e: unknown) => o.log.error('rollout loop stopped', { rollout: state.rolloutId, error: errorMessage(e) }),
      )
      .finally(() => {
        runners.delete(state.rolloutId);
        for (const c of runner.queue.splice(0)) c.done(new ConnectorError('CK_ERR_OTA_STATE', `rollout ${state.rolloutId} stopped`));
      });
  }

  /** Applies an operator's change: through the loop when one runs, else to the file (and starts a loop if it became active). */
  async function change(id: string, apply: (s: RolloutState) => RolloutState): Promise<RolloutState> {
    const current = get(id);
    const runner = runners.get(id);
    if (runner) {
      const r = await new Promise<RolloutState | Error>((done) => runner.queue.push({ apply, done }));
      if (r instanceof Error) throw r;
      return r;
    }
    const next = apply(current);
    if (next === current) return current;
    await rolloutStateFile(join(o.dir, `${id}.json`)).save(next);
    states.set(id, next);
    if (next.status === 'active') {
      const rel = (await releases()).find((r) => r.manifestSha256 === next.release.manifestSha256);
      if (!rel) throw new ConnectorError('CK_ERR_OTA_STATE', `rollout ${id}: its release manifest is not in ${o.releasesDir} (signed)`);
      run(next, rel);
    }
    return next;
  }

  // The rollouts already in the directory: each unfinished one goes on where its file says.
  const offered = await releases();
  for (const name of (await readdir(o.dir)).filter((n) => ID_FILE.test(n)).sort()) {
    try {
      const s = parseRolloutState(await readFile(join(o.dir, name), 'utf8'), name);
      states.set(s.rolloutId, s);
      if (s.status === 'completed') continue;
      const rel = offered.find((r) => r.manifestSha256 === s.release.manifestSha256);
      if (rel) run(s, rel);
      else problems.set(name, `${name}: release ${s.release.version} is not among the signed releases; the rollout is not run`);
    } catch (e) {
      problems.set(name, errorMessage(e));
    }
  }

  const ops: RolloutOps = {
    async releases() {
      return (await releases()).map(({ name, version, manifestSha256, createdAt }) => ({ name, version, manifestSha256, createdAt }));
    },
    async list() {
      const rollouts = [...states.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      return { rollouts, problems: [...problems.values()] };
    },
    async get(id) {
      return get(id);
    },
    async start(r) {
      if (closing) throw new ConnectorError('CK_ERR_OTA_STATE', 'the controller is shutting down');
      const rel = (await releases()).find((x) => x.name === r.release || x.version === r.release);
      if (!rel) throw new ConnectorError('CK_ERR_USAGE', `no release ${r.release} among the signed releases in ${o.releasesDir}`);
      const rolloutId = r.rolloutId ?? `rel-${rel.version}-${rel.manifestSha256.slice(0, 8)}`;
      if (states.has(rolloutId)) throw new ConnectorError('CK_ERR_OTA_STATE', `rollout ${rolloutId} exists; widen or resume it instead`);
      assertNoOtherActive({ rolloutId }, others());
      const state = createRollout({
        rolloutId,
        release: { version: rel.version, manifestSha256: rel.manifestSha256 },
        fleet: await o.fleet(),
        cohort: r.cohort,
        failThreshold: r.failThreshold,
        maxParallel: r.maxParallel,
        ...(r.window ? { window: r.window } : {}),
        now: now(),
      });
      await rolloutStateFile(join(o.dir, `${rolloutId}.json`)).save(state);
      states.set(rolloutId, state);
      o.log.info('rollout started', { rollout: rolloutId, release: rel.version, by: r.by });
      run(state, rel);
      return state;
    },
    async pause(id, by) {
      const s = await change(id, (s) => pauseRollout(s, by, now()));
      o.log.info('rollout paused', { rollout: id, by });
      return s;
    },
    async resume(id, by, acceptFailures) {
      const s = await change(id, (s) => resumeRollout(s, others(), acceptFailures));
      o.log.info('rollout resumed', { rollout: id, by, acceptFailures });
      return s;
    },
    async widen(id, cohort, by) {
      const s = await change(id, (s) => widenRollout(s, cohort, others(), now()));
      o.log.info('rollout widened', { rollout: id, by });
      return s;
    },
  };

  return {
    ops,
    async close() {
      closing = true;
      const all = [...runners.values()];
      for (const r of all) r.abort.abort();
      await Promise.all(all.map((r) => r.ended));
    },
  };
}
