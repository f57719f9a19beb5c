// SPDX-License-Identifier: UNLICENSED
// Public surface of the usign/signify module (OTA release signing, OpenWrt sha256sums.sig checks).
export {
  USIGN_COMMENT_PREFIX,
  encodeUsignPublicKey,
  encodeUsignSecretKey,
  encodeUsignSignature,
  keyIdOf,
  parseUsignPublicKey,
  parseUsignSecretKey,
  parseUsignSignature,
  type UsignPublicKey,
  type UsignSecretKey,
  type UsignSignature,
} from './format.js';
export {
  assertUsign,
  generateUsignKeyPair,
  signUsign,
  usignPublicKeyOf,
  verifyUsign,
  type KeygenOptions,
  type UsignKeyPair,
  type UsignVerifyFailure,
  type UsignVerifyResult,
} from './ed25519.js';
