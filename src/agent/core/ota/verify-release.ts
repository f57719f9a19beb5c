// SPDX-License-Identifier: UNLICENSED
// The device's gate: signature (either key slot), then schema, board, compatibility and anti-rollback,
// all before a single byte is downloaded or written. Pure; returns a result, never throws.
import { errorMessage, hasCode } from '../../../shared/errors.js';
import { verifyUsign, type UsignPublicKey } from '../../../shared/usign/index.js';
import { MAX_MANIFEST_BYTES, parseReleaseManifest, type ReleaseManifest } from '../../../shared/ota/manifest.js';
import { compareVersions } from '../../../shared/ota/version.js';
import type { RejectReason } from '../../../shared/ota/protocol.js';

export interface DeviceFacts {
  readonly board: string;
  /** Agent version running now. */
  readonly version: string;
  /** OpenWrt compat_version of the running OS, if known. */
  readonly osCompatVersion?: string;
}

export type ReleaseCheck =
  | { readonly ok: true; readonly manifest: ReleaseManifest; readonly keyId: string }
  | { readonly ok: false; readonly reason: RejectReason; readonly detail: string };

export function checkRelease(
  manifestBytes: Uint8Array,
  signature: string | undefined,
  trustedKeys: readonly UsignPublicKey[],
  device: DeviceFacts,
): ReleaseCheck {
  // Size first: a 100 MB "manifest" must cost a comparison, not a signature check over 100 MB.
  if (manifestBytes.length > MAX_MANIFEST_BYTES) {
    return { ok: false, reason: 'bad-manifest', detail: `release manifest is larger than ${MAX_MANIFEST_BYTES} bytes` };
  }
  if (signature === undefined || signature.trim() === '') {
    return { ok: false, reason: 'unsigned', detail: 'the job carries no signature; unsigned releases are never installed' };
  }
  const sig = verifyUsign(manifestBytes, signature, trustedKeys);
  if (!sig.ok) return { ok: false, reason: 'bad-signature', detail: `${sig.reason}: ${sig.detail}` };
  let manifest: ReleaseManifest;
  try {
    manifest = parseReleaseManifest(manifestBytes);
  } catch (e) {
    if (hasCode(e, 'CK_ERR_OTA_MANIFEST')) return { ok: false, reason: 'bad-manifest', detail: e.message };
    return { ok: false, reason: 'bad-manifest', detail: errorMessage(e) };
  }
  if (manifest.board !== device.board) {
    return { ok: false, reason: 'wrong-board', detail: `release is for board "${manifest.board}", this device is "${device.board}"` };
  }
  const min = manifest.compat.minVersion;
  if (min !== undefined && compareVersions(device.version, min) < 0) {
    return { ok: false, reason: 'incompatible', detail: `release needs agent >= ${min}, device runs ${device.version}` };
  }
  const os = manifest.compat.osCompatVersion;
  if (os !== undefined && manifest.artifacts.some((a) => a.kind === 'sysupgrade') && device.osCompatVersion !== os) {
    return {
      ok: false,
      reason: 'incompatible',
      detail: `release needs OpenWrt compat_version ${os}, device has ${device.osCompatVersion ?? 'unknown'}`,
    };
  }
  if (compareVersions(manifest.version, device.version) < 0) {
    // A replayed old signed manifest must not walk a device back to a version with known holes.
    return { ok: false, reason: 'downgrade', detail: `release ${manifest.version} is older than the running ${device.version}` };
  }
  return { ok: true, manifest, keyId: sig.keyId };
}
