// SPDX-License-Identifier: UNLICENSED
// Inner TCP MSS clamp for the datagram channel (research DESIGN.md 7.2): each end lowers the MSS option of
// every SYN and SYN-ACK it takes from its local side, so both directions of every connection fit one
// datagram whichever end opens it. Rewritten in place with the checksum updated incrementally (RFC 1624);
// IPv4 fragments and IPv6 with extension headers before TCP pass unchanged (counted by the caller).

/** Largest inner TCP MSS for an outer packet size P: P - outerIP - 8 (UDP) - 28 (DATA_V2) - 1 (kind) - L2 - innerIP - 20. */
export function mssFor(plpmtu: number, outerIpv6: boolean, vlanTags: number, innerIpv6: boolean): number {
  return plpmtu - (outerIpv6 ? 40 : 20) - 8 - 28 - 1 - (14 + 4 * vlanTags) - (innerIpv6 ? 40 : 20) - 20;
}

export type ClampResult = 'clamped' | 'fits' | 'not-syn' | 'no-option' | 'skipped';

/** One's-complement update of a 16-bit checksum for a 16-bit word changing from old to new (RFC 1624 eq. 3). */
function adjust(sum: number, oldWord: number, newWord: number): number {
  let s = (~sum & 0xffff) + (~oldWord & 0xffff) + newWord;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Clamps an Ethernet frame's TCP MSS option in place to at most mss (inner IP family picks the value). */
export function clampMss(frame: Buffer, mssV4: number, mssV6: number): ClampResult {
  let off = 12;
  let type = frame.length >= 14 ? frame.readUInt16BE(off) : 0;
  for (let tags = 0; (type === 0x8100 || type === 0x88a8) && tags < 2; tags++) {
    off += 4;
    if (frame.length < off + 2) return 'skipped';
    type = frame.readUInt16BE(off);
  }
  const ip = off + 2;
  let tcp: number;
  let limit: number;
  if (type === 0x0800) {
    if (frame.length < ip + 20 || frame[ip + 9] !== 6) return 'not-syn';
    if ((frame.readUInt16BE(ip + 6) & 0x3fff) !== 0) return 'skipped'; // a fragment
    tcp = ip + ((frame[ip] ?? 0) & 15) * 4;
    limit = mssV4;
  } else if (type === 0x86dd) {
    if (frame.length < ip + 40) return 'not-syn';
    if (frame[ip + 6] !== 6) return 'skipped'; // extension headers, or not TCP
    tcp = ip + 40;
    limit = mssV6;
  } else return 'not-syn';
  if (frame.length < tcp + 20 || ((frame[tcp + 13] ?? 0) & 0x02) === 0) return 'not-syn';
  const end = Math.min(frame.length, tcp + ((frame[tcp + 12] ?? 0) >> 4) * 4);
  for (let o = tcp + 20; o < end;) {
    const kind = frame[o] ?? 0;
    if (kind === 0) break;
    if (kind === 1) {
      o++;
      continue;
    }
    const len = frame[o + 1] ?? 0;
    if (len < 2 || o + len > end) return 'skipped';
    if (kind === 2 && len === 4) {
      const cur = frame.readUInt16BE(o + 2);
      if (cur <= limit) return 'fits';
      // Sum over the two 16-bit words (aligned to the TCP header) the value may straddle after NOPs.
      const a = tcp + ((o + 2 - tcp) & ~1);
      const words = a === o + 2 ? [0] : [0, 2];
      if (a + 2 * words.length > frame.length) return 'skipped';
      const before = Buffer.from(frame.subarray(a, a + 2 * words.length));
      frame.writeUInt16BE(limit, o + 2);
      let sum = frame.readUInt16BE(tcp + 16);
      for (const i of words) sum = adjust(sum, before.readUInt16BE(i), frame.readUInt16BE(a + i));
      frame.writeUInt16BE(sum, tcp + 16);
      return 'clamped';
    }
    o += len;
  }
  return 'no-option';
}
