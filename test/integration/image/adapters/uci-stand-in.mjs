#!/usr/bin/env node
// STAND-IN for OpenWrt's `uci` (connector-kit tests only). Keeps each config as JSON in
// $UCI_STANDIN_DIR/<config>; changes are staged in $UCI_STANDIN_DIR/.staged/<config> until `uci commit`,
// as the real tool does, and every invocation is appended to $UCI_STANDIN_DIR/.log.
// Supports: get, set, delete, add, add_list, del_list, show, commit; flags -q and -X.
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.UCI_STANDIN_DIR;
if (!dir) {
  process.stderr.write('uci stand-in: UCI_STANDIN_DIR is not set\n');
  process.exit(2);
}
mkdirSync(join(dir, '.staged'), { recursive: true });
let args = process.argv.slice(2);
appendFileSync(join(dir, '.log'), JSON.stringify(args) + '\n');
let quiet = false;
let raw = false;
while (args[0]?.startsWith('-')) {
  const f = args.shift();
  if (f === '-q') quiet = true;
  else if (f === '-X') raw = true;
  else fail(`unsupported flag ${f}`);
}

function fail(msg) {
  if (!quiet) process.stderr.write(`uci: ${msg}\n`);
  process.exit(1);
}

const quote = (v) => `'${v.replace(/'/g, "'\\''")}'`;

// The store is JSON ({"sections":[{"name","type","options":{k: string | string[]}}]}) so a one-item list
// stays a list; `show` renders it the way the real tool does.
function load(cfg) {
  const staged = join(dir, '.staged', cfg);
  const file = existsSync(staged) ? staged : join(dir, cfg);
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')).sections.map((s) => ({ ...s, options: new Map(Object.entries(s.options)) }));
}

function save(cfg, sections) {
  const plain = sections.map((s) => ({ name: s.name, type: s.type, options: Object.fromEntries(s.options) }));
  writeFileSync(join(dir, '.staged', cfg), JSON.stringify({ sections: plain }, null, 1) + '\n');
}

function serialize(cfg, sections, rawNames) {
  const counts = new Map();
  let out = '';
  for (const s of sections) {
    const idx = counts.get(s.type) ?? 0;
    counts.set(s.type, idx + 1);
    const name = rawNames || !/^cfg[0-9a-f]{6}$/.test(s.name) ? s.name : `@${s.type}[${idx}]`;
    out += `${cfg}.${name}=${s.type}\n`;
    for (const [k, v] of s.options) out += `${cfg}.${name}.${k}=${Array.isArray(v) ? v.map(quote).join(' ') : quote(v)}\n`;
  }
  return out;
}

function findSection(sections, ref) {
  const m = /^@([^[]+)\[(-?\d+)\]$/.exec(ref);
  if (m) {
    const ofType = sections.filter((s) => s.type === m[1]);
    const i = Number(m[2]);
    return ofType[i < 0 ? ofType.length + i : i];
  }
  return sections.find((s) => s.name === ref);
}

function parsePath(p) {
  const eq = p.indexOf('=');
  const path = eq >= 0 ? p.slice(0, eq) : p;
  const value = eq >= 0 ? p.slice(eq + 1) : undefined;
  const [cfg, sec, opt] = path.split('.');
  return { cfg, sec, opt, value };
}

const [cmd, ...rest] = args;
switch (cmd) {
  case 'get': {
    const { cfg, sec, opt } = parsePath(rest[0] ?? '');
    const s = findSection(load(cfg) ?? [], sec ?? '');
    if (!s) fail('Entry not found');
    if (opt === undefined) process.stdout.write(`${s.type}\n`);
    else if (!s.options.has(opt)) fail('Entry not found');
    else {
      const v = s.options.get(opt);
      process.stdout.write(`${Array.isArray(v) ? v.join(' ') : v}\n`);
    }
    break;
  }
  case 'set': {
    const { cfg, sec, opt, value } = parsePath(rest[0] ?? '');
    if (value === undefined) fail('Invalid argument');
    const sections = load(cfg) ?? [];
    let s = findSection(sections, sec);
    if (opt === undefined) {
      if (s) s.type = value;
      else sections.push({ name: sec, type: value, options: new Map() });
    } else {
      if (!s) fail('Invalid argument');
      s.options.set(opt, value);
    }
    save(cfg, sections);
    break;
  }
  case 'delete': {
    const { cfg, sec, opt } = parsePath(rest[0] ?? '');
    const sections = load(cfg) ?? [];
    const s = findSection(sections, sec ?? '');
    if (!s) fail('Entry not found');
    if (opt === undefined) sections.splice(sections.indexOf(s), 1);
    else if (!s.options.delete(opt)) fail('Entry not found');
    save(cfg, sections);
    break;
  }
  case 'add': {
    const [cfg, type] = rest;
    const sections = load(cfg) ?? [];
    let n = sections.length;
    let name;
    do name = `cfg${(0x100000 + n++ * 0x1f).toString(16).slice(-6)}`;
    while (sections.some((s) => s.name === name));
    sections.push({ name, type, options: new Map() });
    save(cfg, sections);
    process.stdout.write(`${name}\n`);
    break;
  }
  case 'add_list':
  case 'del_list': {
    const { cfg, sec, opt, value } = parsePath(rest[0] ?? '');
    const sections = load(cfg) ?? [];
    const s = findSection(sections, sec ?? '');
    if (!s || value === undefined || opt === undefined) fail('Invalid argument');
    const cur = s.options.get(opt);
    const list = cur === undefined ? [] : Array.isArray(cur) ? cur : [cur];
    s.options.set(opt, cmd === 'add_list' ? [...list, value] : list.filter((x) => x !== value));
    save(cfg, sections);
    break;
  }
  case 'show': {
    const cfgs = rest[0] ? [rest[0]] : [];
    for (const cfg of cfgs) {
      const sections = load(cfg);
      if (!sections) fail('Entry not found');
      process.stdout.write(serialize(cfg, sections, raw));
    }
    break;
  }
  case 'commit': {
    for (const cfg of rest) {
      const staged = join(dir, '.staged', cfg);
      if (existsSync(staged)) renameSync(staged, join(dir, cfg));
    }
    break;
  }
  default:
    fail(`unsupported command ${cmd}`);
}
