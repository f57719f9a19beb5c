// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeExpositions } from '../../../../src/headend/core/metrics-merge.js';

const worker = (sessions: number): string =>
  [
    '# HELP connector_headend_sessions Tunnel sessions.',
    '# TYPE connector_headend_sessions gauge',
    `connector_headend_sessions{tenant="acme"} ${sessions}`,
    '# HELP connector_headend_sessions_total Opened.',
    '# TYPE connector_headend_sessions_total counter',
    `connector_headend_sessions_total ${sessions * 2}`,
    '',
  ].join('\n');

test("several workers' texts: one HELP and TYPE per family, every series labelled with its worker", () => {
  const out = mergeExpositions([
    {
      worker: null,
      text: '# HELP connector_headend_workers Workers.\n# TYPE connector_headend_workers gauge\nconnector_headend_workers 2\n',
    },
    { worker: '1', text: worker(3) },
    { worker: '2', text: worker(4) },
  ]);
  assert.equal(
    out,
    [
      '# HELP connector_headend_workers Workers.',
      '# TYPE connector_headend_workers gauge',
      'connector_headend_workers 2',
      '# HELP connector_headend_sessions Tunnel sessions.',
      '# TYPE connector_headend_sessions gauge',
      'connector_headend_sessions{worker="1",tenant="acme"} 3',
      'connector_headend_sessions{worker="2",tenant="acme"} 4',
      '# HELP connector_headend_sessions_total Opened.',
      '# TYPE connector_headend_sessions_total counter',
      'connector_headend_sessions_total{worker="1"} 6',
      'connector_headend_sessions_total{worker="2"} 8',
      '',
    ].join('\n'),
  );
});

test('labels with spaces and braces in values, empty label sets, families without samples', () => {
  const out = mergeExpositions([
    { worker: '3', text: '# HELP a A.\n# TYPE a counter\na{reason="x y{z}"} 1\nb{} 2\n# HELP c C.\n# TYPE c gauge\n' },
  ]);
  assert.equal(out, '# HELP a A.\n# TYPE a counter\na{worker="3",reason="x y{z}"} 1\nb{worker="3"} 2\n');
});
