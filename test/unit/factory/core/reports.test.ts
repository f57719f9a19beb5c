// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { provisionExitCode, provisionReportLines } from '../../../../src/factory/core/reports.js';

test('a dry run that found problems refuses (exit 1) unless forced; a real run reports what it forced', () => {
  const problems = [{ code: 'mounted' as const, message: '/dev/sdb is mounted' }];
  assert.equal(provisionExitCode({ dryRun: true, plan: [], problems, forced: false }), 1);
  assert.equal(provisionExitCode({ dryRun: true, plan: [], problems, forced: true }), 0);
  assert.equal(provisionExitCode({ dryRun: true, plan: [], problems: [], forced: false }), 0);
  const lines = provisionReportLines({ dryRun: false, plan: ['write x'], problems, forced: true });
  assert.deepEqual(lines, ['done:', '  write x', '  FORCED [mounted] /dev/sdb is mounted']);
});
