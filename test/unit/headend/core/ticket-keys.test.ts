// SPDX-License-Identifier: UNLICENSED
// The shared ticket keys file: current first, previous keys still decrypt, bad files are clear errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../../src/shared/errors.js';
import { parseTicketKeys, ticketKeyFor } from '../../../../src/headend/core/ticket-keys.js';

const hex = (b: number): string => Buffer.alloc(48, b).toString('hex');

test('the first key is current, later ones are previous, an unknown name is a full handshake', () => {
  const keys = parseTicketKeys(`# rotated 2026-12-04\n${hex(1)}\n\n${hex(2)}\n`, 'k');
  assert.equal(keys.length, 2);
  assert.equal(ticketKeyFor(keys, Buffer.alloc(16, 1)).code, 1);
  const prev = ticketKeyFor(keys, Buffer.alloc(16, 2));
  assert.equal(prev.code, 2, 'a previous key decrypts and asks for a fresh ticket');
  assert.deepEqual(prev.key.aes, Buffer.alloc(16, 2));
  assert.equal(ticketKeyFor(keys, Buffer.alloc(16, 9)).code, 0);
});

test('a bad ticket keys file is a ConfigError naming the line', () => {
  assert.throws(() => parseTicketKeys('', 'k'), ConfigError);
  assert.throws(
    () => parseTicketKeys('abcd\n', 'k'),
    (e: ConfigError) => e.key === 'k:1',
  );
  assert.throws(() => parseTicketKeys(`${hex(1)}\n${hex(1)}\n`, 'k'), /same name/);
  assert.throws(() => parseTicketKeys([1, 2, 3, 4, 5].map(hex).join('\n'), 'k'), /at most 4/);
});
