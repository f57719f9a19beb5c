// SPDX-License-Identifier: UNLICENSED
// `connector-agent status` in human form: nested counters flattened to dotted names, nothing said for a
// counter at zero or an empty text, flags and errors kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderStatus } from '../../../../src/agent/core/status-format.js';

test('counters are flattened to dotted names; zeros and empty texts are left out, flags and errors stay', () => {
  const text = renderStatus({
    version: '1.2.3',
    pid: 42,
    uptimeS: 7,
    phase: 'running',
    tunnel: { state: 'up', datagram: { socket: { kind: 'native', sendDrops: 0, gso: false } } },
    counters: {
      forwarder: { toTunnelFrames: 12, tapWriteDrops: 0 },
      tap: { txFrames: 5, txDrops: 0, lastTxError: '', writeThread: false, rxErrors: 1 },
    },
  });
  const lines = text.split('\n');
  assert.equal(lines[0], 'connector-agent 1.2.3 pid 42 up 7s: running');
  assert.match(text, /^tunnel {4}state=up datagram\.socket\.kind=native datagram\.socket\.gso=false$/m);
  for (const shown of ['forwarder.toTunnelFrames=12', 'tap.txFrames=5', 'tap.writeThread=false', 'tap.rxErrors=1'])
    assert.ok(text.includes(shown), `${shown} in\n${text}`);
  for (const hidden of ['tapWriteDrops', 'tap.txDrops', 'lastTxError', 'sendDrops'])
    assert.ok(!text.includes(hidden), `${hidden} left out`);
});
