// SPDX-License-Identifier: UNLICENSED
// The bench's drop attribution: which of the daemons' drop counters grew during a phase.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dropMetrics, dropNumbers, grown } from '../../../bench/tunnel/drops.js';

test('the agent status numbers under a drop key and the headend drop metrics, and what grew between two reads', () => {
  const status = {
    tunnel: { counters: { queueAqmDrops: 1, txFrames: 99 }, datagram: { socket: { sendDrops: 0 } } },
    counters: { forwarder: { tapWriteDrops: 2, offloadDrops: { 'offload-ip': 3 } }, core: { fromLan: { drops: { 'eth-short': 0 } } } },
  };
  const a = dropNumbers(status);
  assert.deepEqual(a, {
    'agent.tunnel.counters.queueAqmDrops': 1,
    'agent.tunnel.datagram.socket.sendDrops': 0,
    'agent.counters.forwarder.tapWriteDrops': 2,
    'agent.counters.forwarder.offloadDrops.offload-ip': 3,
    'agent.counters.core.fromLan.drops.eth-short': 0,
  });
  const page = [
    '# TYPE connector_headend_drops_total counter',
    'connector_headend_drops_total{reason="queue-aqm"} 4',
    'connector_headend_datagram_drops_total{reason="replay"} 1',
    'connector_headend_datagram_send_drops_total 0',
    'connector_headend_frames_total{vni="42",direction="vtep-in"} 1000',
  ].join('\n');
  const h = dropMetrics(page);
  assert.deepEqual(h, {
    'connector_headend_drops_total{reason="queue-aqm"}': 4,
    'connector_headend_datagram_drops_total{reason="replay"}': 1,
    connector_headend_datagram_send_drops_total: 0,
  });
  const later = { ...a, ...h, 'agent.counters.forwarder.tapWriteDrops': 5, connector_headend_datagram_send_drops_total: 2 };
  assert.deepEqual(grown({ ...a, ...h }, later), {
    'agent.counters.forwarder.tapWriteDrops': 3,
    connector_headend_datagram_send_drops_total: 2,
  });
});
