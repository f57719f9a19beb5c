// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { estOperationUrl, parseRetryAfter } from '../../../../src/shared/est/protocol.js';

test('Retry-After: delta-seconds and HTTP-date', () => {
  assert.equal(parseRetryAfter('120', 0), 120);
  assert.equal(parseRetryAfter(new Date(60_000).toUTCString(), 0), 60);
  assert.equal(parseRetryAfter(undefined, 0), undefined);
  assert.equal(parseRetryAfter('soon', 0), undefined);
});

test('EST URLs: base with or without /.well-known/est', () => {
  assert.equal(estOperationUrl('https://h:8443/.well-known/est', 'cacerts').href, 'https://h:8443/.well-known/est/cacerts');
  assert.equal(estOperationUrl('https://h:8443/.well-known/est/', 'simpleenroll').href, 'https://h:8443/.well-known/est/simpleenroll');
  assert.equal(estOperationUrl('https://h', 'csrattrs').href, 'https://h/.well-known/est/csrattrs');
});
