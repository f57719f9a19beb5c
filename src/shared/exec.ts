// SPDX-License-Identifier: UNLICENSED
// Child-process adapter: run a program, capture its output, turn failures into CK_ERR_EXEC errors that
// say which command failed and what it printed.
import { spawn, spawnSync } from 'node:child_process';
import { ConnectorError } from './errors.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
}

export function describeCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

export function exec(cmd: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs) {
      timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    }
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new ConnectorError('CK_ERR_EXEC', `cannot run ${cmd}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const result = {
        code: code ?? 128,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (result.code !== 0 && !options.allowFailure) {
        const why = signal ? `killed by ${signal}` : `exit ${result.code}`;
        reject(
          new ConnectorError(
            'CK_ERR_EXEC',
            `${describeCommand(cmd, args)} failed (${why}): ${result.stderr.trim() || result.stdout.trim()}`,
          ),
        );
        return;
      }
      resolve(result);
    });
    // A child that exits without reading its input closes the pipe first: not an error of ours.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** Synchronous variant, for cleanup paths that run from process 'exit' handlers. */
export function execSync(cmd: string, args: readonly string[], allowFailure = false): ExecResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const result = { code: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  if (result.code !== 0 && !allowFailure) {
    throw new ConnectorError('CK_ERR_EXEC', `${describeCommand(cmd, args)} failed: ${result.stderr.trim()}`);
  }
  return result;
}
