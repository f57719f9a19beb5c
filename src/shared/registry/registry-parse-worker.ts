// SPDX-License-Identifier: UNLICENSED
// The body of the registry parser's thread (registry-parse-thread.ts): reads and validates the whole
// file here, off the serving loop, and answers with what changed since its last answer.
import { parentPort } from 'node:worker_threads';
import { ConnectorError } from '../errors.js';
import { diffRegistry, EMPTY_INDEX, type RegistryDelta, type RegistryIndex } from './registry-delta.js';
import { registryFileStamp, readRegistryFile } from './registry-file.js';

export interface ParseRequest {
  readonly id: number;
  readonly path: string;
}

export type ParseAnswer =
  | { readonly id: number; readonly ok: true; readonly stamp: string; readonly delta: RegistryDelta }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string };

let index: RegistryIndex = EMPTY_INDEX;
const port = parentPort;
port?.on('message', (m: ParseRequest) => {
  let answer: ParseAnswer;
  try {
    // The stamp is taken before the read: a write between them leaves an older stamp, so the next
    // check reads again rather than keep a registry older than its stamp says.
    const stamp = registryFileStamp(m.path);
    const { delta, index: next } = diffRegistry(index, readRegistryFile(m.path));
    index = next;
    answer = { id: m.id, ok: true, stamp, delta };
  } catch (e) {
    const code = e instanceof ConnectorError ? e.code : 'CK_ERR_REGISTRY';
    answer = { id: m.id, ok: false, code, message: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(answer);
});
