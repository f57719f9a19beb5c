// SPDX-License-Identifier: UNLICENSED
// The datagram channel's AEAD in C (native/tap/aead.c), as a backend of shared/tunnel/datagram/aead.ts:
// one cipher context per epoch key, made at its first use and freed when the key is retired (or, for a
// look-ahead key never retired, when it is collected). Trusted only after it has sealed and opened a
// datagram exactly as node:crypto does, with both ciphers: an addon built against another OpenSSL, or a
// node that lends it none, leaves the channel on node:crypto and says why.
import { randomBytes } from 'node:crypto';
import { aead, nodeCryptoAead, TAG_LENGTH, useAead, type AeadBackend } from '../tunnel/datagram/aead.js';
import type { DatagramCipher, EpochKeys } from '../tunnel/datagram/keys.js';
import { loadTapAddon, type AeadHandle, type TapAddon } from './addon.js';

const ALG: Record<DatagramCipher, number> = { 'AES-256-GCM': 0, 'CHACHA20-POLY1305': 1 };

export type NativeAeadResult = { ok: true; backend: AeadBackend } | { ok: false; reason: string };

function backendOf(addon: Required<Pick<TapAddon, 'aeadNew' | 'aeadFree' | 'aeadSeal' | 'aeadOpen'>>): AeadBackend {
  const contexts = new WeakMap<EpochKeys, AeadHandle>();
  const context = (cipher: DatagramCipher, keys: EpochKeys): AeadHandle => {
    let h = contexts.get(keys);
    if (h === undefined) {
      h = addon.aeadNew(ALG[cipher], keys.key, keys.iv);
      contexts.set(keys, h);
    }
    return h;
  };
  return {
    name: 'native',
    seal(cipher, keys, out, counter, parts) {
      const [a, b] = parts;
      // The channel seals [kind, frame]; anything longer is rare enough for node:crypto.
      if (parts.length > 2 || a === undefined) return nodeCryptoAead.seal(cipher, keys, out, counter, parts);
      if (b === undefined) addon.aeadSeal(context(cipher, keys), out, keys.epoch, counter, a);
      else addon.aeadSeal(context(cipher, keys), out, keys.epoch, counter, a, b);
    },
    open(cipher, keys, d, counter) {
      const out = Buffer.allocUnsafe(d.length - 12 - TAG_LENGTH);
      return addon.aeadOpen(context(cipher, keys), d, keys.epoch, counter, out) ? out : null;
    },
    release(keys) {
      const h = contexts.get(keys);
      if (h === undefined) return;
      contexts.delete(keys);
      addon.aeadFree(h);
    },
  };
}

/** Seals and opens one datagram per cipher both ways against node:crypto; a reason when they differ. */
function disagreement(native: AeadBackend): string | null {
  for (const cipher of Object.keys(ALG) as DatagramCipher[]) {
    const keys: EpochKeys = { epoch: 7, key: randomBytes(32), iv: randomBytes(12) };
    const parts = [Buffer.of(0), randomBytes(300)];
    const mine = Buffer.alloc(12 + 301 + TAG_LENGTH);
    randomBytes(12).copy(mine);
    const theirs = Buffer.from(mine);
    native.seal(cipher, keys, mine, 42, parts);
    nodeCryptoAead.seal(cipher, keys, theirs, 42, parts);
    if (!mine.equals(theirs)) return `${cipher}: the addon's datagram differs from node:crypto's`;
    if (!native.open(cipher, keys, theirs, 42)?.equals(Buffer.concat(parts))) return `${cipher}: the addon cannot open node:crypto's datagram`;
    theirs[20] = (theirs[20] ?? 0) ^ 1;
    if (native.open(cipher, keys, theirs, 42) !== null) return `${cipher}: the addon accepted a forged datagram`;
    native.release(keys);
  }
  return null;
}

/** The addon's AEAD if this process can use it (checked), else why not. */
export function nativeAead(load: () => TapAddon = loadTapAddon): NativeAeadResult {
  let addon: TapAddon;
  try {
    addon = load();
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
  const { aeadNew, aeadFree, aeadSeal, aeadOpen } = addon;
  if (!aeadNew || !aeadFree || !aeadSeal || !aeadOpen) return { ok: false, reason: 'this build of the addon has no AEAD' };
  const backend = backendOf({
    aeadNew: aeadNew.bind(addon),
    aeadFree: aeadFree.bind(addon),
    aeadSeal: aeadSeal.bind(addon),
    aeadOpen: aeadOpen.bind(addon),
  });
  try {
    const why = disagreement(backend);
    return why === null ? { ok: true, backend } : { ok: false, reason: why };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

let installed: NativeAeadResult | null = null;

/**
 * Once per process, at the first datagram channel: the native AEAD if it checks out, else node:crypto
 * with the reason logged. `CONNECTOR_DATAGRAM_AEAD=node` keeps node:crypto (to compare, or to rule it out).
 */
export function installDatagramAead(log: { info(msg: string, f?: Record<string, unknown>): void }, env = process.env): string {
  if (installed === null) {
    installed = env.CONNECTOR_DATAGRAM_AEAD === 'node' ? { ok: false, reason: 'CONNECTOR_DATAGRAM_AEAD=node' } : nativeAead();
    if (installed.ok) useAead(installed.backend);
    log.info('datagram AEAD', installed.ok ? { backend: 'native' } : { backend: 'node:crypto', reason: installed.reason });
  }
  return aead().name;
}
