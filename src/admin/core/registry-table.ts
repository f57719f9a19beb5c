// SPDX-License-Identifier: UNLICENSED
// `connector registry list`: the devices as a table (sorted by serial) or as JSON. Pure.
import type { Registry } from '../../shared/registry/registry.js';

export function registryTable(reg: Registry): string[] {
  const lines = ['serial                           state     tenant           segment  batch'];
  for (const [serial, d] of Object.entries(reg.devices).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(
      `${serial.padEnd(32)} ${d.state.padEnd(9)} ${(d.tenant ?? '-').padEnd(16)} ${(d.segment ?? '-').padEnd(8)} ${d.batch ?? '-'}`,
    );
  }
  if (reg.denylist.length) lines.push(`denylist: ${reg.denylist.join(' ')}`);
  return lines;
}

export function registryJson(reg: Registry): string {
  return JSON.stringify({ devices: reg.devices, denylist: reg.denylist }, null, 2);
}
