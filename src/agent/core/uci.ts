// SPDX-License-Identifier: UNLICENSED
// OpenWrt UCI text format (what `uci export` writes and /etc/config/* holds), parsed without `uci`
// itself so the same code reads the device config on OpenWrt and lab configs on a Debian host.
import { ConnectorError } from '../../shared/errors.js';

export interface UciSection {
  type: string;
  /** The section name; anonymous sections get `@type[index]` like `uci show` prints them. */
  name: string;
  options: Record<string, string>;
  lists: Record<string, string[]>;
}

export type UciDocument = UciSection[];

/** Splits one line into shell-like words: 'single', "double" (backslash escapes), bare, and a # comment. */
function words(line: string, lineNo: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '#') break;
    let w = '';
    while (i < line.length && line[i] !== ' ' && line[i] !== '\t') {
      const ch = line[i] as string;
      if (ch === "'") {
        const end = line.indexOf("'", i + 1);
        if (end < 0) throw new ConnectorError('CK_ERR_CONFIG_INVALID', `UCI line ${lineNo}: unterminated ' quote`);
        w += line.slice(i + 1, end);
        i = end + 1;
      } else if (ch === '"') {
        i++;
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\' && i + 1 < line.length) i++;
          w += line[i];
          i++;
        }
        if (i >= line.length) throw new ConnectorError('CK_ERR_CONFIG_INVALID', `UCI line ${lineNo}: unterminated " quote`);
        i++;
      } else if (ch === '\\' && i + 1 < line.length) {
        w += line[i + 1];
        i += 2;
      } else {
        w += ch;
        i++;
      }
    }
    out.push(w);
  }
  return out;
}

export function parseUci(text: string): UciDocument {
  const doc: UciDocument = [];
  const anon = new Map<string, number>();
  let cur: UciSection | undefined;
  text.split(/\r?\n/).forEach((raw, idx) => {
    const lineNo = idx + 1;
    const w = words(raw, lineNo);
    if (w.length === 0) return;
    const [kw, a, b] = w;
    const bad = (why: string): never => {
      throw new ConnectorError('CK_ERR_CONFIG_INVALID', `UCI line ${lineNo}: ${why}: ${raw.trim()}`);
    };
    switch (kw) {
      case 'package':
        return;
      case 'config': {
        if (!a) bad('config needs a section type');
        const type = a as string;
        let name = b;
        if (name === undefined) {
          const n = anon.get(type) ?? 0;
          anon.set(type, n + 1);
          name = `@${type}[${n}]`;
        }
        cur = { type, name, options: {}, lists: {} };
        doc.push(cur);
        return;
      }
      case 'option':
      case 'list': {
        if (!cur) bad(`${kw} outside of a config section`);
        if (!a || b === undefined) bad(`${kw} needs a name and a value`);
        const sec = cur as UciSection;
        if (kw === 'option') sec.options[a as string] = b as string;
        else (sec.lists[a as string] ??= []).push(b as string);
        return;
      }
      default:
        bad(`unknown keyword "${kw}" (expected config, option or list)`);
    }
  });
  return doc;
}

export function findSection(doc: UciDocument, type: string, name?: string): UciSection | undefined {
  return doc.find((s) => s.type === type && (name === undefined || s.name === name));
}
