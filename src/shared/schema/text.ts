// SPDX-License-Identifier: UNLICENSED
// Schemas for configuration written as text (UCI options and lists), where every value is a string and
// the type lives in the schema. A UCI option arrives as a string, a `list` as an array of strings.
import { issue, type Schema } from './schema.js';

function single(v: unknown, path: readonly (string | number)[]): string {
  if (Array.isArray(v)) return issue(path, 'is a single value: write it as `option`, not `list`');
  if (typeof v !== 'string') return issue(path, 'is required');
  return v;
}

/** Any single string. */
export function text(): Schema<string> {
  return (v, path) => single(v, path);
}

/** A string matching `pattern`; `hint` completes `"x" is not ...`. */
export function patternText(pattern: RegExp, hint: string): Schema<string> {
  return (v, path) => {
    const s = single(v, path);
    return pattern.test(s) ? s : issue(path, `"${s}" is not ${hint}`);
  };
}

export function intText(min: number, max: number): Schema<number> {
  return (v, path) => {
    const s = single(v, path);
    if (!/^-?\d+$/.test(s)) return issue(path, `"${s}" is not an integer`);
    const n = Number(s);
    return n < min || n > max ? issue(path, `${n} is outside ${min}..${max}`) : n;
  };
}

const TRUE = ['1', 'on', 'true', 'yes', 'enabled'];
const FALSE = ['0', 'off', 'false', 'no', 'disabled'];

/** UCI's boolean spellings (what `config_get_bool` accepts). */
export function boolText(): Schema<boolean> {
  return (v, path) => {
    const s = single(v, path);
    if (TRUE.includes(s)) return true;
    if (FALSE.includes(s)) return false;
    return issue(path, `"${s}" is not a boolean (use 1 or 0)`);
  };
}

export function oneOfText<const T extends string>(values: readonly T[]): Schema<T> {
  return (v, path) => {
    const s = single(v, path);
    return values.includes(s as T) ? (s as T) : issue(path, `"${s}" is not one of ${values.join(', ')}`);
  };
}

/** A `list` (or a single `option`, which is a list of one). */
export function listText(): Schema<string[]> {
  return (v, path) => {
    if (Array.isArray(v)) return v.map((x, i) => single(x, [...path, i]));
    return [single(v, path)];
  };
}
