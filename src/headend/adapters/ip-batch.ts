// SPDX-License-Identifier: UNLICENSED
// One long-lived `ip -force -batch -` (or `bridge -force -batch -`) child that takes netlink commands
// line by line: thousands of session ports cost microseconds each instead of a process each. iproute2
// numbers the lines of its input and reports each failure as "Command failed -:N" after the error's own
// text; a command that always fails (a show of a device that cannot exist) after each submission marks
// where it ends, so a caller learns exactly which of its lines failed and why.
import { spawn } from 'node:child_process';
import { ConnectorError } from '../../shared/errors.js';

export interface BatchFailure {
  line: string;
  error: string;
}

export interface IpBatch {
  /** Runs `lines` in order after everything submitted before; resolves with the lines that failed. */
  run(lines: readonly string[]): Promise<BatchFailure[]>;
  close(): Promise<void>;
}

// 15 bytes, never a name this project (or anyone) gives a device: the sentinel must fail every time.
const SENTINEL_DEV = 'ck-no-such-dev';
const SENTINEL = { ip: `link show dev ${SENTINEL_DEV}`, bridge: `fdb show dev ${SENTINEL_DEV}` } as const;

interface Pending {
  first: number;
  lines: readonly string[];
  failures: BatchFailure[];
  resolve(f: BatchFailure[]): void;
  reject(e: Error): void;
}

export function openIpBatch(tool: 'ip' | 'bridge'): IpBatch {
  const child = spawn(tool, ['-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let next = 1;
  let dead: Error | null = null;
  const pending: Pending[] = [];
  let text: string[] = [];
  let buf = '';
  const fail = (e: Error): void => {
    dead ??= e;
    for (const p of pending.splice(0)) p.reject(dead);
  };
  child.on('error', (e) =>
    fail(new ConnectorError('CK_ERR_EXEC', `${tool} -batch could not run: ${e.message}; install iproute2`, { cause: e })),
  );
  child.on('exit', (code, signal) => fail(new ConnectorError('CK_ERR_EXEC', `${tool} -batch exited (${signal ?? code})`)));
  child.stdin.on('error', () => undefined);
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    buf += s;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const m = /^Command failed -:(\d+)$/.exec(l);
      if (!m) {
        text.push(l);
        continue;
      }
      const n = Number(m[1]);
      const error = text.join('; ');
      text = [];
      const p = pending[0];
      if (!p) continue;
      const sentinel = p.first + p.lines.length;
      if (n < sentinel) p.failures.push({ line: p.lines[n - p.first] ?? '', error });
      else {
        pending.shift();
        p.resolve(p.failures);
      }
    }
  });
  return {
    run(lines) {
      if (dead) return Promise.reject(dead);
      return new Promise((resolve, reject) => {
        for (const l of lines) if (l.includes('\n')) return reject(new Error(`one command per line: ${JSON.stringify(l)}`));
        pending.push({ first: next, lines, failures: [], resolve, reject });
        next += lines.length + 1;
        child.stdin.write(lines.map((l) => l + '\n').join('') + SENTINEL[tool] + '\n');
      });
    },
    close() {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      return new Promise((r) => {
        child.once('exit', () => r());
        child.stdin.end();
      });
    },
  };
}
