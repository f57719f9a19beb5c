// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../../../../src/shared/errors.js';
import { parseAllowlist } from '../../../../src/admin/core/allowlist.js';

test('allowlists are read as JSON Lines (the station output) or as one JSON array; extra fields are dropped', () => {
  const jsonl = '{"serial":"A-1","batch":"B1","idevidFingerprint":"ab","time":"x"}\n\n{"serial":"A-2"}\n';
  assert.deepEqual(parseAllowlist(jsonl, 'f'), [{ serial: 'A-1', batch: 'B1', idevidFingerprint: 'ab' }, { serial: 'A-2' }]);
  assert.deepEqual(parseAllowlist('[{"serial":"A-3","batch":7}]', 'f'), [{ serial: 'A-3' }]);
});

test('a broken allowlist is a CK_ERR_REGISTRY error naming the entry', () => {
  assert.throws(
    () => parseAllowlist('{"serial":', 'f'),
    (e) => hasCode(e, 'CK_ERR_REGISTRY'),
  );
  assert.throws(
    () => parseAllowlist('{"serial":"A"}\n{"batch":"B"}', 'f'),
    (e) => hasCode(e, 'CK_ERR_REGISTRY'),
  );
});
