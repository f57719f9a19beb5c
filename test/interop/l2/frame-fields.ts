// SPDX-License-Identifier: UNLICENSED
// The same per-frame fields computed two ways: by our decoders and by tshark. Interop tests compare them
// key by key, so a disagreement names the field, the frame and both values.
import { exec } from '../../../src/shared/exec.js';
import { newArpView, parseArp } from '../../../src/agent/core/l2/arp.js';
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_MIN,
  ETHERTYPE_QINQ,
  ETHERTYPE_VLAN,
  newEthernetView,
  parseEthernet,
} from '../../../src/shared/l2/ethernet.js';
import { ipv4ToString, IP_PROTO_UDP, newIpv4View, parseIpv4Udp } from '../../../src/agent/core/l2/ipv4.js';
import { macToString } from '../../../src/shared/l2/mac.js';
import { ipv6ToString, newNdView, parseNd } from '../../../src/agent/core/l2/nd.js';
import { readVxlanVni, VXLAN_HEADER_LEN, VXLAN_UDP_PORT } from '../../../src/shared/l2/vxlan.js';

/** The tshark fields we compare; each is a comma-joined list over protocol layers (outer first). */
export const FIELDS = [
  'eth.dst',
  'eth.src',
  'eth.type',
  'vlan.id',
  'ieee8021ad.id',
  'arp.opcode',
  'arp.src.hw_mac',
  'arp.src.proto_ipv4',
  'arp.dst.hw_mac',
  'arp.dst.proto_ipv4',
  'arp.isgratuitous',
  'ipv6.src',
  'ipv6.dst',
  'ipv6.hlim',
  'icmpv6.type',
  'icmpv6.checksum.status',
  'icmpv6.nd.ns.target_address',
  'icmpv6.nd.na.target_address',
  'icmpv6.nd.na.flag.r',
  'icmpv6.nd.na.flag.s',
  'icmpv6.nd.na.flag.o',
  'icmpv6.opt.linkaddr',
  'ip.src',
  'ip.dst',
  'ip.proto',
  'udp.dstport',
  'vxlan.vni',
  'vxlan.flag_i',
] as const;
export type Field = (typeof FIELDS)[number];
export type Fields = Partial<Record<Field, string>>;

/** What our decoders made of one frame: the fields they can vouch for, and a class per layer. */
export interface Ours {
  fields: Fields;
  /** e.g. ['vxlan:4242', 'arp:request'] or ['nd:dad-ns']; 'drop:<reason>' when a decoder refused. */
  classes: string[];
}

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;

function add(f: Fields, k: Field, v: string): void {
  const have = f[k];
  f[k] = have === undefined ? v : `${have},${v}`;
}

function decodeLayer(frame: Buffer, f: Fields, classes: string[], depth: number): void {
  const eth = newEthernetView();
  const drop = parseEthernet(frame, eth);
  if (drop) {
    classes.push(`drop:${drop}`);
    return;
  }
  add(f, 'eth.dst', macToString(eth.dst));
  add(f, 'eth.src', macToString(eth.src));
  const firstType = frame.readUInt16BE(12);
  if (firstType >= ETHERTYPE_MIN) add(f, 'eth.type', hex4(firstType));
  for (let i = 0, o = 12; i < eth.vlanCount; i++, o += 4) {
    const vid = String(frame.readUInt16BE(o + 2) & 0x0fff);
    add(f, frame.readUInt16BE(o) === ETHERTYPE_QINQ ? 'ieee8021ad.id' : 'vlan.id', vid);
  }
  if (eth.etherType === ETHERTYPE_ARP) {
    const arp = newArpView();
    const r = parseArp(frame, eth.l3Offset, arp);
    if (r) {
      classes.push(`drop:${r}`);
      return;
    }
    classes.push(`arp:${arp.kind}`);
    add(f, 'arp.opcode', String(arp.op));
    add(f, 'arp.src.hw_mac', macToString(arp.senderMac));
    add(f, 'arp.src.proto_ipv4', ipv4ToString(arp.senderIp));
    add(f, 'arp.dst.hw_mac', macToString(arp.targetMac));
    add(f, 'arp.dst.proto_ipv4', ipv4ToString(arp.targetIp));
    // Wireshark marks "gratuitous" whenever sender IP == target IP; we agree except for 0.0.0.0 replies.
    if (arp.kind === 'gratuitous' || (arp.kind === 'probe' && arp.senderIp === arp.targetIp)) add(f, 'arp.isgratuitous', '1');
    return;
  }
  if (eth.etherType === ETHERTYPE_IPV6) {
    const nd = newNdView();
    const r = parseNd(frame, eth.l3Offset, nd);
    if (r === 'not-nd') {
      classes.push('ipv6:not-nd');
      return;
    }
    if (r) {
      classes.push(`drop:${r}`);
      return;
    }
    classes.push(`nd:${nd.kind}`);
    add(f, 'ipv6.src', ipv6ToString(nd.srcIp));
    add(f, 'ipv6.dst', ipv6ToString(nd.dstIp));
    add(f, 'ipv6.hlim', '255');
    add(f, 'icmpv6.type', String(nd.type));
    add(f, 'icmpv6.checksum.status', '1');
    add(f, nd.type === 135 ? 'icmpv6.nd.ns.target_address' : 'icmpv6.nd.na.target_address', ipv6ToString(nd.targetIp));
    if (nd.type === 136) {
      add(f, 'icmpv6.nd.na.flag.r', nd.router ? '1' : '0');
      add(f, 'icmpv6.nd.na.flag.s', nd.solicited ? '1' : '0');
      add(f, 'icmpv6.nd.na.flag.o', nd.override ? '1' : '0');
    }
    if (nd.linkAddr !== -1) add(f, 'icmpv6.opt.linkaddr', macToString(nd.linkAddr));
    return;
  }
  if (eth.etherType === ETHERTYPE_IPV4) {
    const ip = newIpv4View();
    const r = parseIpv4Udp(frame, eth.l3Offset, ip);
    if (r) {
      classes.push(`drop:${r}`);
      return;
    }
    add(f, 'ip.src', ipv4ToString(ip.src));
    add(f, 'ip.dst', ipv4ToString(ip.dst));
    add(f, 'ip.proto', String(ip.protocol));
    if (ip.dstPort !== -1) add(f, 'udp.dstport', String(ip.dstPort));
    if (ip.protocol === IP_PROTO_UDP && ip.dstPort === VXLAN_UDP_PORT && depth === 0) {
      const vxOff = ip.l4Offset + 8;
      const vni = readVxlanVni(frame, vxOff);
      if (typeof vni !== 'number') {
        classes.push(`drop:${vni}`);
        return;
      }
      classes.push(`vxlan:${vni}`);
      add(f, 'vxlan.vni', String(vni));
      add(f, 'vxlan.flag_i', '1');
      const end = eth.l3Offset + ip.totalLen;
      decodeLayer(frame.subarray(vxOff + VXLAN_HEADER_LEN, end), f, classes, depth + 1);
      return;
    }
    classes.push(`ipv4:${ip.protocol}`);
    return;
  }
  classes.push(eth.vlanCount > 0 && eth.etherType === ETHERTYPE_VLAN ? 'eth:tagged' : `eth:${hex4(eth.etherType)}`);
}

export function ourFields(frame: Buffer): Ours {
  const fields: Fields = {};
  const classes: string[] = [];
  decodeLayer(frame, fields, classes, 0);
  return { fields, classes };
}

export interface TsharkFrame {
  fields: Record<string, string>;
}

/**
 * Runs tshark over a pcap and returns, per frame, the requested fields (comma-joined occurrences).
 * IPv4 and UDP checksum validation is switched on so a bad checksum of ours shows up as expert info.
 */
export async function tsharkFields(pcapPath: string, fields: readonly string[]): Promise<Array<Record<string, string>>> {
  const args = [
    '-r',
    pcapPath,
    '-o',
    'ip.check_checksum:TRUE',
    '-o',
    'udp.check_checksum:TRUE',
    '-T',
    'fields',
    '-E',
    'occurrence=a',
    '-E',
    'aggregator=,',
    '-E',
    'separator=/t',
    ...fields.flatMap((f) => ['-e', f]),
  ];
  const r = await exec('tshark', args, { env: { ...process.env, LC_ALL: 'C' } });
  const lines = r.stdout.split('\n').filter((l) => l.length > 0);
  return lines.map((l) => {
    const cols = l.split('\t');
    const rec: Record<string, string> = {};
    fields.forEach((f, i) => (rec[f] = cols[i] ?? ''));
    return rec;
  });
}

/** Extra tshark fields compareFields needs besides FIELDS. */
export const CONTEXT_FIELDS = ['frame.number', 'icmp.type'] as const;

const ICMP_ERRORS = new Set(['3', '4', '5', '11', '12']);
const ICMPV6_ERRORS = new Set(['1', '2', '3', '4']);

/**
 * Differences between our fields and tshark's for one frame, as readable lines (empty when equal).
 * tshark also dissects the packet an ICMP error quotes, and payloads we do not look into (an IPv6 UDP
 * datagram inside VXLAN); for those frames our list of occurrences only has to be a prefix of tshark's.
 * Frames that end in ARP or ND must match exactly.
 */
export function compareFields(frameNo: number, ours: Ours, theirs: Record<string, string>): string[] {
  const out: string[] = [];
  const quoted =
    (theirs['icmp.type'] ?? '').split(',').some((t) => ICMP_ERRORS.has(t)) ||
    (theirs['icmpv6.type'] ?? '').split(',').some((t) => ICMPV6_ERRORS.has(t));
  // Where our decoders stop (an IP payload that is not ARP, ND or VXLAN), tshark goes on.
  const last = ours.classes[ours.classes.length - 1] ?? '';
  const partial = quoted || /^(ipv4:|ipv6:not-nd|eth:)/.test(last);
  for (const [k, v] of Object.entries(ours.fields)) {
    const t = theirs[k] ?? '';
    const same = partial ? t === v || t.startsWith(`${v},`) : t === v;
    if (!same) out.push(`frame ${frameNo} ${k}: ours ${JSON.stringify(v)} tshark ${JSON.stringify(t)}`);
  }
  if (quoted) return out;
  // The other direction: tshark found ARP, ND or VXLAN that we did not decode.
  const nd = (theirs['icmpv6.type'] ?? '').split(',').some((t) => t === '135' || t === '136');
  if (nd && ours.fields['icmpv6.type'] === undefined) out.push(`frame ${frameNo}: tshark sees NS/NA, ours ${ours.classes.join(' ')}`);
  if ((theirs['arp.opcode'] ?? '') !== '' && ours.fields['arp.opcode'] === undefined) {
    out.push(`frame ${frameNo}: tshark sees ARP, ours ${ours.classes.join(' ')}`);
  }
  if ((theirs['vxlan.vni'] ?? '') !== '' && ours.fields['vxlan.vni'] === undefined) {
    out.push(`frame ${frameNo}: tshark sees VXLAN, ours ${ours.classes.join(' ')}`);
  }
  return out;
}

export async function hasTool(name: string): Promise<boolean> {
  const r = await exec('sh', ['-c', `command -v ${name}`], { allowFailure: true });
  return r.code === 0;
}
