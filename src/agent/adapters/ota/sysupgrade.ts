// SPDX-License-Identifier: UNLICENSED
// The OS-update port: runs the configured sysupgrade command (default /sbin/sysupgrade; a recording
// stand-in in the lab). `-T` is its dry run: image format and board metadata checks, nothing written.
import { spawn } from 'node:child_process';
import { errorMessage } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/log.js';

export const DEFAULT_SYSUPGRADE = '/sbin/sysupgrade';

export function sysupgradeRunner(command: string, log: Logger): (args: readonly string[]) => Promise<number> {
  return (args) =>
    new Promise<number>((resolve) => {
      // stdin is not a pipe: sysupgrade reads nothing, and a fast exit must not raise EPIPE here.
      const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stdout.resume();
      child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
      child.on('error', (e) => {
        log.error('sysupgrade could not start', { command, error: errorMessage(e) });
        resolve(127);
      });
      child.on('close', (code) => {
        log.info('sysupgrade', { command, args: args.join(' '), code: code ?? 128, stderr: stderr.slice(-500) });
        resolve(code ?? 128);
      });
    });
}
