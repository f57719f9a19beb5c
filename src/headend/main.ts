// SPDX-License-Identifier: UNLICENSED
// `connector headend --config FILE`: wiring only. Reads the config, starts the headend, reloads the
// registry on SIGHUP, shuts down on SIGTERM/SIGINT.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { parseHeadendConfigText, type HeadendConfig } from './config.js';
import { startHeadend } from './server.js';

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
  const headend = await startHeadend(config, { log });
  const onHup = (): void => headend.reload();
  process.on('SIGHUP', onHup);
  await new Promise<void>((resolveStop) => {
    const stop = (signal: string): void => {
      log.info('headend stopping', { signal });
      process.removeListener('SIGHUP', onHup);
      void headend.close().then(resolveStop);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
