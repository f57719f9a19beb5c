// SPDX-License-Identifier: UNLICENSED
// Regression: `lab down` then `lab up` in the same directory failed ("a factory CA already exists"),
// because the first lab's generated files were still there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labDown, labUp } from '../../src/lab/main.js';
import { removeNetnsWithPrefix, uniquePrefix } from '../../src/lab/adapters/netns.js';
import { isRoot } from '../helpers/netns.js';
import { skipUnlessCi } from '../helpers/skip.js';

test('a lab can be taken down and brought up again in the same directory', { skip: skipUnlessCi(!isRoot() && 'needs root') }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ck-relaunch-'));
  const prefixes = [uniquePrefix('ckr'), uniquePrefix('ckr')];
  t.after(() => {
    for (const p of prefixes) removeNetnsWithPrefix(`${p}-`);
    rmSync(dir, { recursive: true, force: true });
  });
  for (const prefix of prefixes) {
    const state = await labUp({ dir, prefix, headend: false, agents: false });
    assert.equal(state.prefix, prefix);
    const down = await labDown(dir);
    assert.equal(down.prefix, prefix);
  }
});
