// SPDX-License-Identifier: UNLICENSED
// Drills and failovers edit a registry file and their book beside it in one change; given a PostgreSQL
// registry they refuse with the reason (and without the password) instead of reading an empty file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { exec } from '../../../src/shared/exec.js';
import { REPO } from '../headend/adapters/fixtures.js';

test('a database registry is refused by drill and failover commands, naming why', async () => {
  const url = 'postgres://ops:s3cret@db.example/connector';
  for (const args of [
    ['drill', 'status', '--registry', url],
    ['failover', 'end', '--registry', url, '--tenant', 'acme'],
  ]) {
    const r = await exec(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/connector.ts'), ...args], {
      cwd: REPO,
      allowFailure: true,
    });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /need a registry file, not a database/);
    assert.doesNotMatch(r.stderr, /s3cret/, 'the password is not printed');
  }
});
