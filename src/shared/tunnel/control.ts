// SPDX-License-Identifier: UNLICENSED
// Tunnel control messages (agent <-> headend). They travel in the ordinary record framing with VNI 0 and
// an inner Ethernet frame of EtherType 0x88B5 (IEEE 802 local experimental), so the stream needs no
// second framing and a capture shows them as ordinary VXLAN. Payload:
//
//   u8 version (1) | u8 type | u16 body length | body (UTF-8 JSON object)
//
// JSON keeps the messages extensible: a receiver ignores fields it does not know, and a newer major
// version is refused with an `error` message naming both versions. Pure: bytes in, result out.
import { ETH_HEADER_LEN } from '../l2/ethernet.js';

export const CONTROL_VNI = 0;
export const CONTROL_ETHERTYPE = 0x88b5;
export const CONTROL_VERSION = 1;
export const ALPN_PROTOCOL = 'connector-l2/1';
/** Control bodies are small; this bound keeps a whole message inside one record. */
export const CONTROL_MAX_BODY = 1200;

const TYPE_CODES = { hello: 1, 'hello-ack': 2, ping: 3, pong: 4, bye: 5, error: 6, 'dg-state': 7 } as const;
export type ControlType = keyof typeof TYPE_CODES;
const TYPE_BY_CODE = new Map<number, ControlType>(Object.entries(TYPE_CODES).map(([k, v]) => [v, k as ControlType]));

export interface HelloMessage {
  type: 'hello';
  agentVersion: string;
  site: string;
  capabilities: readonly string[];
  /** VNI the device believes it has; informational only, the headend ignores it. */
  vni?: number;
}

/** Session parameters chosen by the headend; tenant-neutral (no tenant or segment names). */
export interface HelloAckMessage {
  type: 'hello-ack';
  vni: number;
  sessionId: string;
  headendVersion: string;
  keepaliveMs: number;
  deadAfterMs: number;
  capabilities: readonly string[];
}

export interface PingMessage {
  type: 'ping' | 'pong';
  nonce: number;
  /** Sender's monotonic milliseconds; echoed unchanged in the pong so the sender computes RTT. */
  t: number;
}

/**
 * `retryAfterMs` (bye and error, optional, added after version 1 shipped: an older peer ignores it and an
 * older headend never sends it): the window over which the client should spread its next attempt. The
 * client waits a uniformly random time in [0, max(retryAfterMs, its own backoff)), so a fleet told
 * "headend shutting down" returns at the rate the headend asked for, not all at once.
 */
export const MAX_RETRY_AFTER_MS = 600_000;

export interface ByeMessage {
  type: 'bye';
  reason: string;
  retryAfterMs?: number;
}

export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
  retryAfterMs?: number;
}

/**
 * `dg-state` (type 7, sent only on a session that negotiated the datagram channel; an older peer would
 * count it as `control-type` and carry on): the sender's data now leaves over `tx`, and why.
 */
export interface DgStateMessage {
  type: 'dg-state';
  tx: 'datagram' | 'tls';
  reason: string;
}

export type ControlMessage = HelloMessage | HelloAckMessage | PingMessage | ByeMessage | ErrorMessage | DgStateMessage;

export const CONTROL_DROPS = [
  'control-short',
  'control-version',
  'control-type',
  'control-length',
  'control-json',
  'control-field',
] as const;
export type ControlDrop = (typeof CONTROL_DROPS)[number];

export type DecodedControl = { ok: true; msg: ControlMessage } | { ok: false; drop: ControlDrop; detail: string };

/** Control frames use locally administered unicast addresses so no bridge floods them as group traffic. */
const CONTROL_DST = Buffer.from([0x02, 0, 0, 0, 0, 0x02]);
const CONTROL_SRC = Buffer.from([0x02, 0, 0, 0, 0, 0x01]);

/** True when a record's inner frame is a control frame (VNI 0 and EtherType 0x88B5). */
export function isControlFrame(vni: number, frame: Uint8Array): boolean {
  return vni === CONTROL_VNI && frame.length >= ETH_HEADER_LEN && (((frame[12] ?? 0) << 8) | (frame[13] ?? 0)) === CONTROL_ETHERTYPE;
}

function bodyOf(msg: ControlMessage): Record<string, unknown> {
  const { type: _type, ...rest } = msg;
  return rest;
}

/** The whole inner Ethernet frame carrying `msg` (put it in a record with VNI 0). */
export function encodeControl(msg: ControlMessage): Buffer {
  const body = Buffer.from(JSON.stringify(bodyOf(msg)), 'utf8');
  if (body.length > CONTROL_MAX_BODY) {
    throw new RangeError(`control message ${msg.type} body is ${body.length} bytes, limit ${CONTROL_MAX_BODY}`);
  }
  const frame = Buffer.alloc(ETH_HEADER_LEN + 4 + body.length);
  CONTROL_DST.copy(frame, 0);
  CONTROL_SRC.copy(frame, 6);
  frame.writeUInt16BE(CONTROL_ETHERTYPE, 12);
  frame[14] = CONTROL_VERSION;
  frame[15] = TYPE_CODES[msg.type];
  frame.writeUInt16BE(body.length, 16);
  body.copy(frame, 18);
  return frame;
}

const isStr = (v: unknown, max = 256): v is string => typeof v === 'string' && v.length <= max;
const isUint = (v: unknown, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
const isStrList = (v: unknown): v is string[] => Array.isArray(v) && v.length <= 64 && v.every((x) => isStr(x, 64));

function fieldDrop(type: ControlType, field: string): DecodedControl {
  return { ok: false, drop: 'control-field', detail: `${type}.${field} is missing or has the wrong type` };
}

/** Decodes the control frame `frame` (as matched by isControlFrame). Never throws. */
export function decodeControl(frame: Uint8Array): DecodedControl {
  if (frame.length < ETH_HEADER_LEN + 4) return { ok: false, drop: 'control-short', detail: `${frame.length} bytes` };
  const version = frame[14] ?? 0;
  if (version !== CONTROL_VERSION) {
    return { ok: false, drop: 'control-version', detail: `version ${version}, this side speaks ${CONTROL_VERSION}` };
  }
  const type = TYPE_BY_CODE.get(frame[15] ?? 0);
  if (!type) return { ok: false, drop: 'control-type', detail: `type code ${frame[15] ?? 0}` };
  const len = ((frame[16] ?? 0) << 8) | (frame[17] ?? 0);
  // Frames may be zero-padded to 60 bytes on the way, so the body may be shorter than what follows.
  if (len > CONTROL_MAX_BODY || 18 + len > frame.length) {
    return { ok: false, drop: 'control-length', detail: `body length ${len}, frame ${frame.length} bytes` };
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(frame.buffer, frame.byteOffset + 18, len).toString('utf8'));
  } catch (e) {
    return { ok: false, drop: 'control-json', detail: (e as Error).message };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, drop: 'control-json', detail: 'body is not a JSON object' };
  }
  const b = body as Record<string, unknown>;
  switch (type) {
    case 'hello': {
      if (!isStr(b['agentVersion'], 64)) return fieldDrop(type, 'agentVersion');
      if (!isStr(b['site'], 128)) return fieldDrop(type, 'site');
      if (!isStrList(b['capabilities'])) return fieldDrop(type, 'capabilities');
      const msg: HelloMessage = { type, agentVersion: b['agentVersion'], site: b['site'], capabilities: b['capabilities'] };
      if (isUint(b['vni'], 0xffffff)) msg.vni = b['vni'];
      return { ok: true, msg };
    }
    case 'hello-ack': {
      if (!isUint(b['vni'], 0xffffff) || b['vni'] === 0) return fieldDrop(type, 'vni');
      if (!isStr(b['sessionId'], 64)) return fieldDrop(type, 'sessionId');
      if (!isStr(b['headendVersion'], 64)) return fieldDrop(type, 'headendVersion');
      if (!isUint(b['keepaliveMs'], 3_600_000)) return fieldDrop(type, 'keepaliveMs');
      if (!isUint(b['deadAfterMs'], 3_600_000)) return fieldDrop(type, 'deadAfterMs');
      if (!isStrList(b['capabilities'])) return fieldDrop(type, 'capabilities');
      return {
        ok: true,
        msg: {
          type,
          vni: b['vni'],
          sessionId: b['sessionId'],
          headendVersion: b['headendVersion'],
          keepaliveMs: b['keepaliveMs'],
          deadAfterMs: b['deadAfterMs'],
          capabilities: b['capabilities'],
        },
      };
    }
    case 'ping':
    case 'pong': {
      if (!isUint(b['nonce'], 0xffff_ffff)) return fieldDrop(type, 'nonce');
      if (typeof b['t'] !== 'number' || !Number.isFinite(b['t'])) return fieldDrop(type, 't');
      return { ok: true, msg: { type, nonce: b['nonce'], t: b['t'] } };
    }
    case 'bye': {
      if (!isStr(b['reason'], 128)) return fieldDrop(type, 'reason');
      const msg: ByeMessage = { type, reason: b['reason'] };
      if (isUint(b['retryAfterMs'], MAX_RETRY_AFTER_MS)) msg.retryAfterMs = b['retryAfterMs'];
      return { ok: true, msg };
    }
    case 'dg-state': {
      if (b['tx'] !== 'datagram' && b['tx'] !== 'tls') return fieldDrop(type, 'tx');
      if (!isStr(b['reason'], 64)) return fieldDrop(type, 'reason');
      return { ok: true, msg: { type, tx: b['tx'], reason: b['reason'] } };
    }
    case 'error': {
      if (!isStr(b['code'], 64)) return fieldDrop(type, 'code');
      if (!isStr(b['message'], 512)) return fieldDrop(type, 'message');
      const msg: ErrorMessage = { type, code: b['code'], message: b['message'] };
      if (isUint(b['retryAfterMs'], MAX_RETRY_AFTER_MS)) msg.retryAfterMs = b['retryAfterMs'];
      return { ok: true, msg };
    }
  }
}
