// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, formatLine } from '../../../src/shared/log.js';

const LOG = new URL('../../../src/shared/log.ts', import.meta.url).pathname;
const AT = new Date('2026-12-06T21:04:05.678Z');

test('a human line starts with its time, then level, message and fields (quoted where they hold spaces)', () => {
  const line = formatLine('human', AT, 'warn', 'session closed', { serial: 'CK-1', reason: 'peer said bye', n: 3, gone: undefined });
  assert.equal(line, '2026-12-06T21:04:05.678Z warn  session closed serial=CK-1 reason="peer said bye" n=3');
});

test('a JSON line carries time, level, message and fields', () => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l), now: () => AT, base: { component: 'headend' } }).child({ worker: 2 });
  log.info('headend stopping', { signal: 'SIGTERM' });
  log.debug('not at info');
  assert.deepEqual(
    lines.map((l) => JSON.parse(l) as unknown),
    [{ time: AT.toISOString(), level: 'info', msg: 'headend stopping', component: 'headend', worker: 2, signal: 'SIGTERM' }],
  );
});

/** Runs `body` (TypeScript, `createLogger` in scope) in a child; its stderr and the number of writes to it. */
function child(body: string): { stderr: string; writes: number; status: number | null } {
  const dir = mkdtempSync(join(tmpdir(), 'ck-log-'));
  try {
    const file = join(dir, 'main.ts');
    writeFileSync(
      file,
      [
        `import { writeSync } from 'node:fs';`,
        `import { createLogger } from ${JSON.stringify(LOG)};`,
        `let writes = 0;`,
        `const real = process.stderr.write.bind(process.stderr);`,
        `process.stderr.write = ((c: string) => (writes++, real(c))) as typeof process.stderr.write;`,
        `process.on('exit', () => writeSync(1, String(writes)));`,
        body,
      ].join('\n'),
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', timeout: 30_000 });
    return { stderr: r.stderr, writes: Number(r.stdout), status: r.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('stderr: lines logged in one task leave in one write, in order; the next task writes again', () => {
  const r = child(
    `const log = createLogger();
     for (let i = 0; i < 1000; i++) log.info('session closed', { i });
     setTimeout(() => log.warn('later'), 10);`,
  );
  assert.equal(r.status, 0);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1001);
  assert.deepEqual(
    lines.slice(0, 1000).map((l) => (JSON.parse(l) as { i: number }).i),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  assert.equal((JSON.parse(lines[1000] as string) as { msg: string }).msg, 'later');
  assert.equal(r.writes, 2, 'one write for the thousand, one for the line of the later task');
});

test('stderr: what is held when the process exits (process.exit, an uncaught exception) is still written', () => {
  const exit = child(`const log = createLogger(); log.info('stopped'); process.exit(3);`);
  assert.equal(exit.status, 3);
  assert.match(exit.stderr, /"msg":"stopped"/);
  const crash = child(`const log = createLogger(); log.error('about to fail'); throw new Error('boom');`);
  assert.notEqual(crash.status, 0);
  assert.match(crash.stderr, /"msg":"about to fail"/);
  assert.match(crash.stderr, /boom/);
});
