// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { derOid, encodeCsrAttrs } from '../../../../src/enroll/core/csrattrs.js';

test('OIDs encode as DER (X.690 8.19), including multi-byte arcs', () => {
  assert.equal(derOid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
  assert.equal(derOid('2.5.4.5').toString('hex'), '0603550405');
  const attrs = encodeCsrAttrs();
  assert.equal(attrs[0], 0x30);
  assert.equal(attrs[1], attrs.length - 2);
});
