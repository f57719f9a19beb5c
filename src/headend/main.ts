// SPDX-License-Identifier: UNLICENSED
// `connector headend --config FILE`: wiring only. Reads the config, starts the headend, reloads the
// registry on SIGHUP, shuts down on SIGTERM/SIGINT.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { parseHeadendConfigText, type HeadendConfig } from './core/config.js';
import { startHeadend, type Headend } from './adapters/server.js';

export function loadHeadendConfig(file: string): HeadendConfig {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, `cannot be read: ${errorMessage(e)}`);
  }
  return parseHeadendConfigText(text, path, dirname(path));
}

/** Runs until SIGTERM/SIGINT; resolves with the exit code. */
export async function runHeadend(configFile: string, log: Logger): Promise<number> {
  const config = loadHeadendConfig(configFile);
  // Handlers go in before the listeners open: a signal sent as soon as "headend listening" is logged
  // must not hit Node's default action (SIGHUP would terminate the process).
  let headend: Headend | null = null;
  let stopSignal: string | null = null;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((r) => (wake = r));
  const onHup = (): void => headend?.reload();
  const onStop = (signal: string) => (): void => {
    stopSignal ??= signal;
    wake();
  };
  const onTerm = onStop('SIGTERM');
  const onInt = onStop('SIGINT');
  process.on('SIGHUP', onHup);
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  try {
    headend = await startHeadend(config, { log });
    await stopped;
    log.info('headend stopping', { signal: stopSignal ?? '' });
    await headend.close();
  } finally {
    process.removeListener('SIGHUP', onHup);
    process.removeListener('SIGTERM', onTerm);
    process.removeListener('SIGINT', onInt);
  }
  return 0;
}
