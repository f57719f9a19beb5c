// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../../../../src/shared/errors.js';
import { findSection, parseUci } from '../../../../src/agent/core/uci.js';

test('parses named and anonymous sections, options and lists as uci export writes them', () => {
  const doc = parseUci(`
package connector

config agent 'agent'
\toption enabled '1'
\tlist headend 'tls://dc1.example.net:443'
\tlist headend "tls://dc2.example.net"   # failover
\toption site 'O'\\''Brien HQ'

config proxy
\toption fresh_s 300
`);
  const agent = findSection(doc, 'agent', 'agent');
  assert.equal(agent?.options['enabled'], '1');
  assert.deepEqual(agent?.lists['headend'], ['tls://dc1.example.net:443', 'tls://dc2.example.net']);
  assert.equal(agent?.options['site'], "O'Brien HQ");
  assert.equal(findSection(doc, 'proxy')?.name, '@proxy[0]');
  assert.equal(findSection(doc, 'proxy')?.options['fresh_s'], '300');
});

test('rejects malformed lines with the line number', () => {
  for (const bad of ["option x '1'", "config agent 'a'\n\toption x 'unterminated", 'config agent\nfrobnicate x y']) {
    assert.throws(
      () => parseUci(bad),
      (e: unknown) => hasCode(e, 'CK_ERR_CONFIG_INVALID') && /UCI line \d+/.test((e as Error).message),
    );
  }
});
