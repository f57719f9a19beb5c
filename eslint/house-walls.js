// SPDX-License-Identifier: UNLICENSED
// The architecture's walls as one lint rule (docs/architecture.md). Every relative import is resolved to
// its file, so a folder that happens to share a program's name (agent/core/ota) is never mistaken for it:
//   - src/shared imports only src/shared;
//   - a program (src/<house>) imports its own house and src/shared, never another program;
//   - src/cli reaches a program only through its main.ts;
//   - a core/ file imports no adapters/, no main.ts and none of shared's I/O modules.
import { dirname, relative, resolve, sep } from 'node:path';

const SHARED_IO = [
  'shared/native/',
  'shared/exec.',
  'shared/atomic-file.',
  'shared/system-time.',
  'shared/tunnel/tls-transport.',
  'shared/factory-block/block-io.',
  'shared/registry/registry-file.',
];

/** 'src/agent/core/x.ts' -> { house: 'agent', rest: 'core/x.ts' }; null outside src/. */
function place(repoPath) {
  const parts = repoPath.split(sep);
  if (parts[0] !== 'src' || parts.length < 3) return null;
  return { house: parts[1], rest: parts.slice(2).join('/') };
}

const isCore = (p) => p.rest.startsWith('core/');

export default {
  meta: {
    type: 'problem',
    docs: { description: 'programs import only themselves and src/shared; core/ imports no I/O' },
    schema: [],
  },
  create(context) {
    const root = context.cwd;
    const file = context.filename;
    const from = place(relative(root, file));
    if (!from) return {};
    const check = (node, source) => {
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = resolve(dirname(file), source);
      const to = place(relative(root, target));
      const say = (message) => context.report({ node, message: `${source}: ${message} (docs/architecture.md)` });
      if (!to) return say(`src/${from.house} must not import from outside src/`);
      if (from.house === 'shared') {
        if (to.house !== 'shared') say('src/shared must not import a program');
        return;
      }
      if (from.house === 'cli') {
        if (to.house !== 'cli' && to.house !== 'shared' && to.rest !== 'main.js' && to.rest !== 'main.ts') {
          say(`a CLI command reaches src/${to.house} through its main.ts only`);
        }
        return;
      }
      if (to.house !== from.house && to.house !== 'shared')
        return say(`src/${from.house} must not import another program (src/${to.house})`);
      if (!isCore(from)) return;
      const rel = `${to.house}/${to.rest}`;
      if (to.house === from.house && (to.rest.startsWith('adapters/') || /^main\.[jt]s$/.test(to.rest))) {
        say('core/ must not import adapters/ or main.ts: receive a port instead');
      } else if (to.house === 'shared' && SHARED_IO.some((p) => rel.startsWith(p))) {
        say('core/ is pure: this shared module does I/O');
      }
    };
    return {
      ImportDeclaration: (n) => check(n, n.source.value),
      ExportNamedDeclaration: (n) => n.source && check(n, n.source.value),
      ExportAllDeclaration: (n) => check(n, n.source.value),
      ImportExpression: (n) => n.source.type === 'Literal' && check(n, n.source.value),
    };
  },
};
