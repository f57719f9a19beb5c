// SPDX-License-Identifier: UNLICENSED
// Lint for the whole tree, and the architecture's walls (docs/architecture.md): a program never imports
// another program, `core/` imports no I/O, `src/shared` imports no program. `npm test` runs it.
import tseslint from 'typescript-eslint';
import houseWalls from './eslint/house-walls.js';

const HOUSES = ['agent', 'headend', 'enroll', 'ota', 'factory', 'image', 'lab', 'admin', 'console', 'dr'];

const IO_MODULES = [
  'node:net',
  'node:tls',
  'node:fs',
  'node:fs/promises',
  'node:dgram',
  'node:child_process',
  'node:http',
  'node:https',
  'node:http2',
  'node:timers',
  'node:timers/promises',
  'node:worker_threads',
  'node:cluster',
  'net',
  'tls',
  'fs',
  'fs/promises',
  'dgram',
  'child_process',
  'http',
  'https',
  'timers',
  'worker_threads',
].map((name) => ({ name, message: 'core/ is pure: I/O belongs in adapters/, wired in main.ts' }));

const CORE_GLOBALS = ['setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate', 'process'].map(
  (name) => ({ name, message: 'core/ is pure: time and process state come in as arguments or ports' }),
);

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'out/**', '.cache/**', 'node_modules/**', 'bench/results/**', '**/*.d.ts'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  { files: ['src/**/*.ts'], plugins: { houses: { rules: { walls: houseWalls } } }, rules: { 'houses/walls': 'error' } },
  ...HOUSES.map((house) => ({
    files: [`src/${house}/core/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', { paths: IO_MODULES }],
      'no-restricted-globals': ['error', ...CORE_GLOBALS],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'core/ is pure: take the time as an argument or a Clock port' },
        { object: 'performance', property: 'now', message: 'core/ is pure: take the time as an argument or a Clock port' },
      ],
    },
  })),
);
