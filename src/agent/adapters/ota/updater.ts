// SPDX-License-Identifier: UNLICENSED
// The device updater on real files: the phase machine of core/ota/updater.ts over state.json (written
// atomically), a download cache beside it (HTTPS with resume), the A/B slots and real timers. The
// agent, the lab and the OTA tests create theirs here.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../shared/atomic-file.js';
import {
  runUpdater,
  type ArtifactCache,
  type Updater,
  type UpdaterOptions as CoreOptions,
  type UpdaterStore,
} from '../../core/ota/updater.js';
import { INITIAL, parsePersisted } from '../../core/ota/state.js';
import { downloadWithResume } from './downloader.js';
import { sha256File } from './slots.js';

export type { Updater };

export interface UpdaterOptions extends Omit<CoreOptions, 'store' | 'artifacts' | 'now' | 'sleep'> {
  /** Holds state.json and the download cache; outside the slot tree. */
  readonly stateDir: string;
  /** Extra trust anchors for artifact downloads (lab CA); the system store otherwise. */
  readonly downloadCa?: string | Buffer;
  readonly now?: () => Date;
  readonly sleep?: (ms: number) => Promise<void>;
}

export function stateFileStore(stateDir: string): UpdaterStore {
  const file = join(stateDir, 'state.json');
  return {
    async load() {
      try {
        return parsePersisted(await readFile(file, 'utf8')) ?? INITIAL;
      } catch {
        return INITIAL;
      }
    },
    async save(p) {
      await mkdir(stateDir, { recursive: true });
      await writeFileAtomic(file, JSON.stringify(p, null, 2) + '\n');
    },
  };
}

export function downloadCache(dir: string, ca: string | Buffer | undefined): ArtifactCache {
  const fileOf: ArtifactCache['fileOf'] = (job) => join(dir, `${job.jobId}-${job.artifact.name}.part`);
  return {
    fileOf,
    async download(job, url, onProgress) {
      await mkdir(dir, { recursive: true });
      return downloadWithResume({ url, file: fileOf(job), size: job.artifact.size, ...(ca !== undefined ? { ca } : {}), onProgress });
    },
    hash: (job) => sha256File(fileOf(job)),
    async clear() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function createUpdater(o: UpdaterOptions): Updater {
  const { stateDir, downloadCa, ...rest } = o;
  return runUpdater({
    ...rest,
    store: stateFileStore(stateDir),
    artifacts: downloadCache(join(stateDir, 'download'), downloadCa),
    now: o.now ?? (() => new Date()),
    sleep: o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms))),
  });
}
