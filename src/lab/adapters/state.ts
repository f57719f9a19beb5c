// SPDX-License-Identifier: UNLICENSED
// The lab's state file (<lab dir>/lab.json): written before the first namespace exists and updated as
// processes start, so `lab down` can remove everything even after `lab up` or a test crashed halfway.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConnectorError, isErrno } from '../../shared/errors.js';
import type { Wiring } from '../core/topology.js';
import type { WanProfile } from '../core/wan.js';

export interface LabProcess {
  /** Stable name used by the CLI and tests: headend, agent-a, agent-b. */
  name: string;
  node: string;
  pid: number;
  /** Program and arguments as run inside the node's namespace, so a restart repeats them exactly. */
  cmd: readonly string[];
  cwd: string;
  log: string;
}

export interface LabState {
  version: 1;
  prefix: string;
  dir: string;
  wiring: Wiring;
  phase: 'building' | 'up';
  createdAt: string;
  /** Node name -> namespace name. */
  nodes: Readonly<Record<string, string>>;
  processes: readonly LabProcess[];
  files: Readonly<Record<string, string>>;
  /** The WAN profile on the isp-dc link (`lab up --wan`), when there is one. */
  wan?: WanProfile;
  /** UDP NAT timeout of the lab's NATs, s (`lab up --nat-udp-timeout`), when not the kernel's. */
  natUdpTimeoutS?: number;
}

export const STATE_FILE = 'lab.json';

export function statePath(dir: string): string {
  return join(dir, STATE_FILE);
}

export function readLabState(dir: string): LabState {
  let text: string;
  try {
    text = readFileSync(statePath(dir), 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) {
      throw new ConnectorError('CK_ERR_LAB', `no lab in ${dir} (no ${STATE_FILE}); start one with "connector lab up --dir ${dir}"`);
    }
    throw new ConnectorError('CK_ERR_LAB', `cannot read ${statePath(dir)}`, { cause: e });
  }
  const doc = JSON.parse(text) as Partial<LabState>;
  if (doc.version !== 1 || typeof doc.prefix !== 'string' || !doc.nodes || !Array.isArray(doc.processes)) {
    throw new ConnectorError('CK_ERR_LAB', `${statePath(dir)} is not a lab state file; remove it and the namespaces named like it by hand`);
  }
  return doc as LabState;
}

export function tryReadLabState(dir: string): LabState | undefined {
  try {
    return readLabState(dir);
  } catch {
    return undefined;
  }
}

export function writeLabState(state: LabState): void {
  const p = statePath(state.dir);
  const tmp = `${p}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, p);
}

export function removeLabState(dir: string): void {
  rmSync(statePath(dir), { force: true });
}

/** Namespace of a node, with a helpful error listing the nodes when the name is wrong. */
export function nodeNs(state: LabState, node: string): string {
  const ns = state.nodes[node];
  if (!ns) throw new ConnectorError('CK_ERR_LAB', `no node "${node}" in this lab; nodes: ${Object.keys(state.nodes).join(', ')}`);
  return ns;
}
