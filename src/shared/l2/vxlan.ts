// SPDX-License-Identifier: UNLICENSED
// VXLAN header (RFC 7348 section 5). Inside the TLS tunnel it tags each frame with its VNI; the same bytes
// are what a standard VTEP expects after UDP/4789, so a DC terminator can hand frames on unchanged.
//
//   byte 0: flags R R R R I R R R   bytes 1-3: reserved   bytes 4-6: VNI   byte 7: reserved

export const VXLAN_HEADER_LEN = 8;
/** The I flag: "VNI is valid"; MUST be set (RFC 7348 5). */
export const VXLAN_FLAG_I = 0x08;
/** IANA-assigned UDP destination port (RFC 7348 5). */
export const VXLAN_UDP_PORT = 4789;
export const VXLAN_MAX_VNI = 0xff_ffff;

export const VXLAN_DROPS = ['vxlan-short', 'vxlan-no-i-flag'] as const;
export type VxlanDrop = (typeof VXLAN_DROPS)[number];

/** Writes the 8-byte header at `buf[off]`: I flag set, every reserved bit zero (MUST on transmit). */
export function writeVxlanHeader(buf: Uint8Array, off: number, vni: number): void {
  if (!Number.isInteger(vni) || vni < 0 || vni > VXLAN_MAX_VNI) {
    throw new RangeError(`VNI must be an integer from 0 to ${VXLAN_MAX_VNI}, got ${vni}`);
  }
  if (off < 0 || off + VXLAN_HEADER_LEN > buf.length) throw new RangeError('no room for the VXLAN header');
  buf[off] = VXLAN_FLAG_I;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = (vni >>> 16) & 0xff;
  buf[off + 5] = (vni >>> 8) & 0xff;
  buf[off + 6] = vni & 0xff;
  buf[off + 7] = 0;
}

/**
 * The VNI of the header at `buf[off]`, or why it is unusable. Reserved bits (and the GBP/GPE extensions
 * that reuse them) are ignored, as RFC 7348 requires of a receiver.
 */
export function readVxlanVni(buf: Uint8Array, off: number): number | VxlanDrop {
  if (off < 0 || buf.length - off < VXLAN_HEADER_LEN) return 'vxlan-short';
  if (((buf[off] ?? 0) & VXLAN_FLAG_I) === 0) return 'vxlan-no-i-flag';
  return ((buf[off + 4] ?? 0) << 16) | ((buf[off + 5] ?? 0) << 8) | (buf[off + 6] ?? 0);
}
