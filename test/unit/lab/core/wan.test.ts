// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_WAN, parseWanSpec, wanArgs } from '../../../../src/lab/core/wan.js';

test('--wan takes RTT,JITTER,RATE,LOSS; the default is the seed link (12 ms RTT, ±1 ms, 1 Gbit/s, 0)', () => {
  assert.deepEqual(parseWanSpec('12ms,1ms,1g,0'), { rttMs: 12, jitterMs: 1, rateBps: 1e9, loss: 0 });
  assert.deepEqual(parseWanSpec('default'), DEFAULT_WAN);
  assert.deepEqual(parseWanSpec('30ms,0,500m,0.1%'), { rttMs: 30, jitterMs: 0, rateBps: 500e6, loss: 0.001 });
  assert.deepEqual(parseWanSpec('80'), { ...DEFAULT_WAN, rttMs: 80 });
  assert.equal(parseWanSpec('lossy').loss, 0.01);
});

test('a bad --wan names the field and the expected form', () => {
  assert.throws(() => parseWanSpec('12ms,1ms,fast,0'), /bad rate 'fast'.*want RTT,JITTER,RATE,LOSS/);
  assert.throws(() => parseWanSpec('12ms,1ms,1g,2'), /loss '2' above 1/);
  assert.throws(() => parseWanSpec('1,2,3,4,5'), /too many fields/);
  assert.throws(
    () => parseWanSpec('-5ms'),
    (e: Error & { code?: string }) => e.code === 'CK_ERR_USAGE',
  );
});

test('the RTT profile becomes half the delay and half the jitter per direction', () => {
  const a = wanArgs({ rttMs: 12, jitterMs: 1, rateBps: 1e9, loss: 0.005 }, 'wa', 'wb', '/tmp/s.json');
  assert.deepEqual(a.slice(0, 6), ['-a', 'wa', '-b', 'wb', '-d', '6']);
  assert.ok(a.join(' ').includes('-j 0.5'));
  assert.ok(a.join(' ').includes('-r 1000000000'));
  assert.ok(a.join(' ').includes('-l 0.005'));
});
