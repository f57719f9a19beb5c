// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  array,
  boolean,
  closest,
  editDistance,
  formatPath,
  integer,
  nullable,
  object,
  oneOf,
  optional,
  parseWith,
  record,
  refine,
  removed,
  SchemaIssue,
  string,
  type Schema,
} from '../../../../src/shared/schema/schema.js';
import { boolText, intText, listText } from '../../../../src/shared/schema/text.js';

/** The first problem as `path: problem`, or the parsed value. */
function run<T>(schema: Schema<T>, value: unknown): T | string {
  try {
    return parseWith(schema, value, (i) => {
      throw i;
    });
  } catch (e) {
    if (e instanceof SchemaIssue) return `${formatPath(e.path)}: ${e.problem}`;
    throw e;
  }
}

test('paths read like the document: keys with dots, indexes in brackets, the document itself as (root)', () => {
  assert.equal(formatPath([]), '(root)');
  assert.equal(formatPath(['tenants', 'acme', 'segments', 'lan', 'vni']), 'tenants.acme.segments.lan.vni');
  assert.equal(formatPath(['artifacts', 0, 'urls', 1]), 'artifacts[0].urls[1]');
});

test('the first problem names its path', () => {
  const seg = object({ vni: integer(1, 0xffffff), vteps: optional(array(string()), []) });
  const reg = object({ tenants: record(object({ segments: record(seg) })) });
  assert.equal(
    run(reg, { tenants: { acme: { segments: { lan: { vni: 0 } } } } }),
    'tenants.acme.segments.lan.vni: must be an integer from 1 to 16777215, got 0',
  );
  assert.equal(
    run(reg, { tenants: { acme: { segments: { lan: { vni: 1, vteps: ['a', 7] } } } } }),
    'tenants.acme.segments.lan.vteps[1]: must be a non-empty string',
  );
  assert.equal(run(reg, []), '(root): must be an object');
  assert.equal(run(object({ a: string() }), {}), 'a: is required');
});

test('unknown keys are refused with the closest known key, checked before the known ones', () => {
  const s = object({ listen: optional(object({ port: integer(0, 65535) })), deviceCa: string() });
  assert.equal(run(s, { listne: {} }), 'listne: unknown key; did you mean listen?');
  assert.equal(run(s, { deviceCa: 'x', listen: { prot: 1 } }), 'listen.prot: unknown key; did you mean port?');
  assert.equal(run(s, { zzzzzz: 1 }), 'zzzzzz: unknown key; known keys: listen, deviceCa');
  assert.deepEqual(run(object({ a: string() }, { unknownKeys: 'ignore' }), { a: 'x', newer: 1 }), { a: 'x' });
  assert.deepEqual(run(object({ a: string() }, { ignoredKeys: ['$comment'] }), { a: 'x', $comment: 'hi' }), { a: 'x' });
});

test('a suggestion is a likely typo, not any word', () => {
  assert.equal(closest('tap_nam', ['bridge', 'tap_name']), 'tap_name');
  assert.equal(closest('sha265', ['sha256', 'size']), 'sha256');
  assert.equal(closest('DeviceCA', ['deviceCa']), 'deviceCa');
  assert.equal(closest('colour', ['bridge', 'tap_name']), undefined);
  assert.equal(editDistance('listne', 'listen'), 1);
  assert.equal(editDistance('', 'abc'), 3);
});

test('defaults, null, refinements and removed keys', () => {
  assert.equal(run(optional(integer(1, 9), 5), undefined), 5);
  assert.equal(run(nullable(integer(1, 9)), null), null);
  assert.equal(
    run(
      refine(string(), (v) => (v === 'x' ? 'must not be x' : undefined)),
      'x',
    ),
    '(root): must not be x',
  );
  assert.equal(run(object({ old: removed('renamed "new"') }), { old: 1 }), 'old: renamed "new"');
  assert.equal(run(oneOf(['a', 'b']), 'c'), '(root): "c" is not one of a, b');
  assert.equal(run(boolean(), 'true'), '(root): must be true or false, got "true"');
  assert.equal(run(record(integer(0, 1), { keyPattern: /^[a-z]+$/, keyProblem: 'lowercase only' }), { A: 1 }), 'A: lowercase only');
  assert.equal(run(array(string(), { nonEmpty: true }), []), '(root): must be a non-empty array');
});

test('text values (UCI): integers, booleans and lists', () => {
  assert.equal(run(intText(1, 300), '5'), 5);
  assert.equal(run(intText(1, 300), 'often'), '(root): "often" is not an integer');
  assert.equal(run(intText(1, 300), '301'), '(root): 301 is outside 1..300');
  assert.equal(run(boolText(), 'yes'), true);
  assert.equal(run(boolText(), 'maybe'), '(root): "maybe" is not a boolean (use 1 or 0)');
  assert.deepEqual(run(listText(), 'a'), ['a']);
  assert.deepEqual(run(listText(), ['a', 'b']), ['a', 'b']);
  assert.equal(run(intText(1, 2), ['1']), '(root): is a single value: write it as `option`, not `list`');
});
