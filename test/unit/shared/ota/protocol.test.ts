// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  jobStateReportTopic,
  jobStateTopic,
  jobTopic,
  parseJobDocument,
  parseJobStateReport,
  parseJobStateReportTopic,
  parseJobTopic,
} from '../../../../src/shared/ota/protocol.js';

test('job topics round-trip and anything else is not a job topic', () => {
  assert.deepEqual(parseJobTopic(jobTopic('R3S-1', 'j1')), { serial: 'R3S-1', jobId: 'j1', state: false });
  assert.deepEqual(parseJobTopic(jobStateTopic('R3S-1', 'j1')), { serial: 'R3S-1', jobId: 'j1', state: true });
  assert.equal(parseJobTopic('connector/v1/R3S-1/status'), undefined);
  assert.equal(parseJobTopic('connector/v1/R3S-1/jobs/j1/state/x'), undefined);
  assert.equal(parseJobStateReportTopic(jobStateReportTopic('R3S-1')), 'R3S-1');
  assert.equal(parseJobTopic(jobStateReportTopic('R3S-1')), undefined, 'the per-device report topic is not a job topic');
  assert.equal(parseJobStateReportTopic('connector/v1/R3S-1/job-state/x'), undefined);
  assert.equal(parseJobStateReportTopic(jobStateTopic('R3S-1', 'j1')), undefined);
});

test('malformed payloads are drops with a reason, never exceptions', () => {
  assert.deepEqual(parseJobDocument(Buffer.from('{')), { ok: false, drop: 'not-json' });
  assert.deepEqual(parseJobDocument(Buffer.from('[]')), { ok: false, drop: 'not-object' });
  assert.deepEqual(parseJobDocument(Buffer.from('{"jobId":"../x"}')), { ok: false, drop: 'bad-job-id' });
  assert.equal(parseJobDocument(Buffer.from('{"jobId":"j","rolloutId":"r","manifest":"","issuedAt":"t"}')).ok, true);
  assert.deepEqual(parseJobStateReport(Buffer.from('{"jobId":"j","version":"1","at":"t","state":"exploded"}')), {
    ok: false,
    drop: 'bad-state',
  });
  for (let i = 0; i < 200; i++) {
    const junk = Buffer.from(Array.from({ length: i % 40 }, (_, k) => (k * 31 + i) % 256));
    assert.doesNotThrow(() => parseJobDocument(junk));
    assert.doesNotThrow(() => parseJobStateReport(junk));
  }
});

test('a known field of the wrong type is a drop named after it; unknown fields from a newer sender are ignored', () => {
  const report = (extra: Record<string, unknown>) =>
    Buffer.from(JSON.stringify({ jobId: 'j', version: '1.0.0', at: 't', state: 'downloading', ...extra }));
  assert.deepEqual(parseJobStateReport(report({ progress: { bytes: 'lots', total: 9 } })), { ok: false, drop: 'bad-field' });
  assert.deepEqual(parseJobStateReport(report({ detail: { nested: true } })), { ok: false, drop: 'bad-field' });
  assert.deepEqual(parseJobStateReport(report({ version: 7 })), { ok: false, drop: 'missing-field' });
  assert.deepEqual(parseJobStateReport(report({ progress: { bytes: 1, total: 9 }, addedLater: 1 })), {
    ok: true,
    value: { jobId: 'j', state: 'downloading', version: '1.0.0', progress: { bytes: 1, total: 9 }, at: 't' },
  });
  assert.deepEqual(parseJobDocument(Buffer.from('{"jobId":"j","rolloutId":"r","manifest":"","issuedAt":"t","signature":5}')), {
    ok: false,
    drop: 'bad-signature-field',
  });
  assert.deepEqual(parseJobDocument(Buffer.from('{"jobId":"j","rolloutId":"r","manifest":"","issuedAt":"t","priority":1}')).ok, true);
});
