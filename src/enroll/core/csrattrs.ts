// SPDX-License-Identifier: UNLICENSED
// The /csrattrs body (RFC 7030 section 4.5.2, CsrAttrs ::= SEQUENCE OF AttrOrOID): tells clients to sign
// with ecdsa-with-SHA256 and to use an EC P-256 key. Hand-built DER: three OIDs and one attribute.

function derLen(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLen(body.length), body]);
}

export function derOid(oid: string): Buffer {
  const parts = oid.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = parts;
  const out = [40 * a + b];
  for (const p of rest) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

export const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
export const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
export const OID_SECP256R1 = '1.2.840.10045.3.1.7';

export function encodeCsrAttrs(): Buffer {
  const keyAttr = tlv(0x30, Buffer.concat([derOid(OID_EC_PUBLIC_KEY), tlv(0x31, derOid(OID_SECP256R1))]));
  return tlv(0x30, Buffer.concat([derOid(OID_ECDSA_WITH_SHA256), keyAttr]));
}
