// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jobStateTopic, jobTopic, parseJobDocument, parseJobStateReport, parseJobTopic } from '../../../../src/shared/ota/protocol.js';

test('job topics round-trip and anything else is not a job topic', () => {
  assert.deepEqual(parseJobTopic(jobTopic('R3S-1', 'j1')), { serial: 'R3S-1', jobId: 'j1', state: false });
  assert.deepEqual(parseJobTopic(jobStateTopic('R3S-1', 'j1')), { serial: 'R3S-1', jobId: 'j1', state: true });
  assert.equal(parseJobTopic('connector/v1/R3S-1/status'), undefined);
  assert.equal(parseJobTopic('connector/v1/R3S-1/jobs/j1/state/x'), undefined);
});

test('malformed payloads are drops with a reason, never exceptions', () => {
  assert.deepEqual(parseJobDocument(Buffer.from('{')), { ok: false, drop: 'not-json' });
  assert.deepEqual(parseJobDocument(Buffer.from('[]')), { ok: false, drop: 'not-object' });
  assert.deepEqual(parseJobDocument(Buffer.from('{"jobId":"../x"}')), { ok: false, drop: 'bad-job-id' });
  assert.equal(parseJobDocument(Buffer.from('{"jobId":"j","rolloutId":"r","manifest":"","issuedAt":"t"}')).ok, true);
  assert.deepEqual(parseJobStateReport(Buffer.from('{"jobId":"j","version":"1","at":"t","state":"exploded"}')), { ok: false, drop: 'bad-state' });
  for (let i = 0; i < 200; i++) {
    const junk = Buffer.from(Array.from({ length: i % 40 }, (_, k) => (k * 31 + i) % 256));
    assert.doesNotThrow(() => parseJobDocument(junk));
    assert.doesNotThrow(() => parseJobStateReport(junk));
  }
});
