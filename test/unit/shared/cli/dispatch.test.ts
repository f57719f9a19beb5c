// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EXIT, exitCodeFor, reportError, runProgram } from '../../../../src/shared/cli/dispatch.js';
import { ConfigError, ConnectorError, UsageError } from '../../../../src/shared/errors.js';

/** Runs `fn` with process.stderr.write captured; returns what it wrote. */
async function stderrOf(fn: () => unknown): Promise<string> {
  const write = process.stderr.write;
  let out = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stderr.write = write;
  }
  return out;
}

test('one table maps errors to exit codes: usage 2, a coded failure 1, anything else (a bug) 70', () => {
  assert.equal(exitCodeFor(new UsageError('--x is required')), EXIT.usage);
  assert.equal(exitCodeFor(new ConfigError('agent.tap_name', 'too long')), EXIT.failure);
  assert.equal(exitCodeFor(new ConnectorError('CK_ERR_IO', 'disk gone')), EXIT.failure);
  assert.equal(exitCodeFor(new TypeError('undefined is not a function')), EXIT.bug);
  assert.equal(exitCodeFor('thrown string'), EXIT.bug);
  assert.deepEqual([EXIT.ok, EXIT.failure, EXIT.usage, EXIT.bug], [0, 1, 2, 70]);
});

test('a known failure is printed with its stable code, a bug with its stack', async () => {
  let code = -1;
  const known = await stderrOf(() => (code = reportError('connector', new ConnectorError('CK_ERR_IO', 'disk gone'))));
  assert.equal(known, 'connector: disk gone [CK_ERR_IO]\n');
  assert.equal(code, 1);
  const bug = await stderrOf(() => (code = reportError('connector', new RangeError('index 9'))));
  assert.match(bug, /^connector: unexpected error: RangeError: index 9\n {4}at /);
  assert.equal(code, 70);
});

test('runProgram sets the exit code from the result or the error', async (t) => {
  const before = process.exitCode;
  t.after(() => {
    process.exitCode = before;
  });
  await runProgram('p', async () => 3);
  assert.equal(process.exitCode, 3);
  await stderrOf(() => runProgram('p', () => Promise.reject(new UsageError('bad'))));
  assert.equal(process.exitCode, 2);
  process.exitCode = before;
});
