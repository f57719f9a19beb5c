// SPDX-License-Identifier: UNLICENSED
// The body of POST /api/tenants/{tenant}/segments as the registry edit wants it: each field's type checked
// with a 400 naming it; the values themselves (VNI range, addresses, MTU) are the registry's to judge.
import type { SegmentInput } from '../../shared/registry/registry-edit.js';
import { HttpError } from './http-util.js';

export function segmentInput(body: Record<string, unknown>): SegmentInput {
  const vni = body['vni'];
  if (typeof vni !== 'number' || !Number.isInteger(vni)) throw new HttpError(400, 'give "vni", a whole number (1-16777215)');
  // Left out, a value keeps what the segment had (when it is changed with replace).
  const vteps = body['vteps'];
  if (vteps !== undefined && (!Array.isArray(vteps) || !vteps.every((v) => typeof v === 'string'))) {
    throw new HttpError(400, '"vteps" is a list of IP addresses');
  }
  const mtu = body['vtepPathMtu'];
  if (mtu !== undefined && (typeof mtu !== 'number' || !Number.isInteger(mtu))) throw new HttpError(400, '"vtepPathMtu" is a whole number');
  const flag = (k: string): boolean | undefined => {
    const v = body[k];
    if (v !== undefined && typeof v !== 'boolean') throw new HttpError(400, `"${k}" is true or false`);
    return v;
  };
  const multiSite = flag('multiSite');
  const allowDhcpFromDc = flag('allowDhcpFromDc');
  return {
    vni,
    ...(vteps !== undefined ? { vteps: vteps as string[] } : {}),
    ...(mtu !== undefined ? { vtepPathMtu: mtu } : {}),
    ...(multiSite !== undefined ? { multiSite } : {}),
    ...(allowDhcpFromDc !== undefined ? { allowDhcpFromDc } : {}),
  };
}
