// SPDX-License-Identifier: UNLICENSED
// One way to validate every document the kit reads: the registry, the headend, EST and agent configs, the
// image lock file, the OTA manifest and the MQTT payloads. A schema is a plain function that checks one
// value and knows where it sits (its path), so every problem names its JSON path or UCI option.
//
// Ours, not a library (valibot 1.x was measured: ~28 KB more in the agent bundle for the parts we need):
// every document needs what a library leaves to the caller anyway: its own error code (CK_ERR_REGISTRY,
// CK_ERR_OTA_MANIFEST, an ImageError, a counted drop for MQTT), messages worded for an operator, a
// "did you mean" for unknown keys, and UCI's string-typed values. That is about as much code as the
// combinators themselves, and a dependency on the device binary would enter its SBOM and lock file.
//
// A schema never picks the error type: `parseWith` hands the first problem to the document's `fail`.

/** Where a value sits in its document: object keys and array indexes, outermost first. */
export type Path = readonly (string | number)[];

/** Checks `value` found at `path` and returns it typed (and possibly converted), or throws a SchemaIssue. */
export type Schema<T> = (value: unknown, path: Path) => T;
export type Infer<S> = S extends Schema<infer T> ? T : never;

/** The first problem in a document. Thrown inside schemas only; `parseWith` turns it into the caller's error. */
export class SchemaIssue extends Error {
  override name = 'SchemaIssue';
  constructor(
    readonly path: Path,
    readonly problem: string,
  ) {
    super(`${formatPath(path)}: ${problem}`);
  }
}

/** `tenants.acme.segments.lan.vni`, `artifacts[0].urls[1]`; the document itself is `(root)`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const p of path) out = typeof p === 'number' ? `${out}[${p}]` : out === '' ? p : `${out}.${p}`;
  return out === '' ? '(root)' : out;
}

export function issue(path: Path, problem: string): never {
  throw new SchemaIssue(path, problem);
}

/** Runs `schema` over a whole document; the first problem goes to `fail`, which throws the document's error. */
export function parseWith<T>(schema: Schema<T>, value: unknown, fail: (issue: SchemaIssue) => never): T {
  const r = check(schema, value);
  return r.ok ? r.value : fail(r.issue);
}

/** Runs `schema` and returns the first problem instead of throwing: for payloads from the network, which are drops. */
export function check<T>(schema: Schema<T>, value: unknown): { ok: true; value: T } | { ok: false; issue: SchemaIssue } {
  try {
    return { ok: true, value: schema(value, []) };
  } catch (e) {
    if (e instanceof SchemaIssue) return { ok: false, issue: e };
    throw e;
  }
}

/** JSON text to a value; a syntax error goes to `fail` with the parser's message. */
export function parseJsonText(text: string, fail: (problem: string, cause: unknown) => never): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    return fail(`is not valid JSON: ${e instanceof Error ? e.message : String(e)}`, e);
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---- values -------------------------------------------------------------------------------------------

const missing = (path: Path): never => issue(path, 'is required');

export interface StringRule {
  /** The whole string must match. */
  pattern?: RegExp;
  /** What a matching value looks like, for the message: `"x" is not <hint>`. */
  hint?: string;
  /** Accept ''. Off by default: an empty string is almost always a value someone forgot to fill in. */
  allowEmpty?: boolean;
}

export function string(rule: StringRule = {}): Schema<string> {
  const what = `${rule.allowEmpty ? 'must be a string' : 'must be a non-empty string'}${rule.hint ? ` (${rule.hint})` : ''}`;
  return (v, path) => {
    if (v === undefined) return missing(path);
    if (typeof v !== 'string' || (v === '' && !rule.allowEmpty)) return issue(path, what);
    if (rule.pattern && !rule.pattern.test(v)) {
      return issue(path, rule.hint ? `"${v}" is not ${rule.hint}` : `"${v}" does not match ${String(rule.pattern)}`);
    }
    return v;
  };
}

export function integer(min: number, max: number): Schema<number> {
  return (v, path) => {
    if (v === undefined) return missing(path);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      return issue(path, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
}

/** A count of something, e.g. `positiveInteger('bytes')`: a safe integer above zero. */
export function positiveInteger(unit: string): Schema<number> {
  return (v, path) => {
    if (v === undefined) return missing(path);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) return issue(path, `must be a positive integer (${unit})`);
    return v;
  };
}

export function boolean(): Schema<boolean> {
  return (v, path) => {
    if (v === undefined) return missing(path);
    if (typeof v !== 'boolean') return issue(path, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
}

export function oneOf<const T extends string | number>(values: readonly T[]): Schema<T> {
  return (v, path) => {
    if (v === undefined) return missing(path);
    if (!values.includes(v as T)) return issue(path, `${JSON.stringify(v)} is not one of ${values.join(', ')}`);
    return v as T;
  };
}

export function literal<const T extends string | number | boolean>(value: T): Schema<T> {
  return (v, path) => (v === value ? value : issue(path, `must be ${JSON.stringify(value)}`));
}

export interface ArrayRule {
  nonEmpty?: boolean;
}

export function array<T>(item: Schema<T>, rule: ArrayRule = {}): Schema<T[]> {
  return (v, path) => {
    if (v === undefined) return missing(path);
    if (!Array.isArray(v)) return issue(path, rule.nonEmpty ? 'must be a non-empty array' : 'must be an array');
    if (rule.nonEmpty && v.length === 0) return issue(path, 'must be a non-empty array');
    return v.map((x, i) => item(x, [...path, i]));
  };
}

// ---- combinators ---------------------------------------------------------------------------------------

/** A missing value (undefined) becomes `dflt`; anything else must pass `schema`. */
export function optional<T>(schema: Schema<T>): Schema<T | undefined>;
export function optional<T>(schema: Schema<T>, dflt: T): Schema<T>;
export function optional<T>(schema: Schema<T>, dflt?: T): Schema<T | undefined> {
  return (v, path) => (v === undefined ? dflt : schema(v, path));
}

/** `null` is a value of its own (e.g. "no metrics endpoint"). */
export function nullable<T>(schema: Schema<T>): Schema<T | null> {
  return (v, path) => (v === null ? null : schema(v, path));
}

/** A further check on a valid value: `check` returns the problem, or undefined when the value is fine. */
export function refine<T>(schema: Schema<T>, check: (value: T) => string | undefined): Schema<T> {
  return (v, path) => {
    const out = schema(v, path);
    const problem = check(out);
    return problem === undefined ? out : issue(path, problem);
  };
}

/** A key that is no longer accepted: present at all, it is refused with `problem` (say what replaced it). */
export function removed(problem: string): Schema<undefined> {
  return (v, path) => (v === undefined ? undefined : issue(path, problem));
}

export type Shape = Readonly<Record<string, Schema<unknown>>>;
export type ObjectOf<S extends Shape> = { -readonly [K in keyof S]: Infer<S[K]> };

export interface ObjectRule {
  /**
   * 'refuse' (default): a key not in the shape is an error naming the closest known key, so a typo never
   * leaves a default silently in place. 'ignore': for messages between programs of different versions,
   * where a newer sender may add fields an older reader does not know.
   */
  unknownKeys?: 'refuse' | 'ignore';
  /** Keys accepted and ignored besides the shape's (e.g. `$comment`). */
  ignoredKeys?: readonly string[];
  /** What one key is called in messages: 'key' (JSON) or 'option' (UCI). */
  noun?: string;
}

/** A JSON object with known keys, checked in the shape's order after the unknown-key check. */
export function object<S extends Shape>(shape: S, rule: ObjectRule = {}): Schema<ObjectOf<S>> {
  const known = Object.keys(shape);
  return (v, path) => {
    if (v === undefined) return missing(path);
    if (!isRecord(v)) return issue(path, 'must be an object');
    if (rule.unknownKeys !== 'ignore') {
      for (const k of Object.keys(v)) {
        if (!Object.hasOwn(shape, k) && !rule.ignoredKeys?.includes(k))
          issue([...path, k], unknownKeyProblem(k, known, rule.noun ?? 'key'));
      }
    }
    const out: Record<string, unknown> = {};
    for (const k of known) out[k] = (shape[k] as Schema<unknown>)(Object.hasOwn(v, k) ? v[k] : undefined, [...path, k]);
    return out as ObjectOf<S>;
  };
}

/** An object that may be left out: absent, it is an empty one, so each of its keys takes its own default. */
export function section<S extends Shape>(shape: S, rule: ObjectRule = {}): Schema<ObjectOf<S>> {
  const schema = object(shape, rule);
  return (v, path) => schema(v === undefined ? {} : v, path);
}

export interface RecordRule {
  /** Every key must match. */
  keyPattern?: RegExp;
  /** Said of a key that does not match, e.g. 'tenant names are lowercase letters, digits, - and _'. */
  keyProblem?: string;
}

/** A JSON object used as a map: any keys (optionally checked), every value of one schema. */
export function record<T>(value: Schema<T>, rule: RecordRule = {}): Schema<Record<string, T>> {
  return (v, path) => {
    if (v === undefined) return missing(path);
    if (!isRecord(v)) return issue(path, 'must be an object');
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(v)) {
      if (rule.keyPattern && !rule.keyPattern.test(k))
        issue([...path, k], rule.keyProblem ?? `key "${k}" does not match ${String(rule.keyPattern)}`);
      out[k] = value(x, [...path, k]);
    }
    return out;
  };
}

// ---- unknown keys --------------------------------------------------------------------------------------

export function unknownKeyProblem(name: string, known: readonly string[], noun = 'key'): string {
  const near = closest(name, known);
  return near !== undefined ? `unknown ${noun}; did you mean ${near}?` : `unknown ${noun}; known ${noun}s: ${known.join(', ')}`;
}

/**
 * The known name a typo most likely meant: smallest edit distance (a swap of two neighbours counts one),
 * case-insensitive, and close enough to be a typo rather than another word. Undefined when none is.
 */
export function closest(name: string, known: readonly string[]): string | undefined {
  const n = name.toLowerCase();
  const limit = Math.max(1, Math.floor(n.length / 3));
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(n, k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= limit ? best : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => (rows[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, at(i - 2, j - 2) + 1);
      (rows[i] as number[])[j] = d;
    }
  }
  return at(a.length, b.length);
}
