// SPDX-License-Identifier: UNLICENSED
// How the lab starts our own programs inside namespaces. From the built package (dist/) it runs the bin
// launchers; from sources under tsx (tests, development) it runs the TypeScript entry points, so a lab
// never runs a stale build.
import { fileURLToPath } from 'node:url';

export type Program = 'connector' | 'connector-agent';

export interface ProgramCommand {
  cmd: string;
  args: string[];
  /** Working directory that resolves `--import tsx` (the project root). */
  cwd: string;
}

export function projectRoot(): string {
  // src/lab/programs.ts and dist/lab/programs.js are both two levels below the root.
  return fileURLToPath(new URL('../../../', import.meta.url));
}

export function programCommand(p: Program, fromSources = import.meta.url.endsWith('.ts')): ProgramCommand {
  const root = projectRoot();
  if (fromSources) {
    const entry = p === 'connector' ? 'src/cli/connector.ts' : 'src/agent/cli.ts';
    return { cmd: process.execPath, args: ['--import', 'tsx', root + entry], cwd: root };
  }
  return { cmd: process.execPath, args: [root + `bin/${p}.js`], cwd: root };
}
