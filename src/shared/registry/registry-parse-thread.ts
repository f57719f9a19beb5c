// SPDX-License-Identifier: UNLICENSED
// The serving side of the registry parser's thread: asks it to parse the file, applies the delta it
// answers to the registry it answered before. One question at a time, so deltas apply in order; a thread
// that dies is started again and answers its first question in full.
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConnectorError, type ErrorCode } from '../errors.js';
import { applyRegistryDelta } from './registry-delta.js';
import type { ParseAnswer, ParseRequest } from './registry-parse-worker.js';
import { EMPTY_REGISTRY, type Registry } from './registry.js';

/** The thread itself failed (could not start, crashed): the caller parses on its own loop instead. */
export class RegistryThreadError extends Error {
  override name = 'RegistryThreadError';
}

// Compiled, the thread runs the .js beside this file. Run from source, it runs the .ts, through tsx's
// loader, which a thread does not inherit (node 20 does not apply a thread's --import hooks to its main
// module), so a two-line shim registers it first.
const FROM_SOURCE = extname(fileURLToPath(import.meta.url)) === '.ts';
function startWorker(): Worker {
  const body = new URL(`./registry-parse-worker${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url);
  if (!FROM_SOURCE) return new Worker(body);
  const api = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  return new Worker(`import(${api}).then((tsx) => { tsx.register(); return import(${JSON.stringify(body.href)}); });`, { eval: true });
}

export class RegistryParseThread {
  #worker: Worker | null = null;
  #base: Registry = EMPTY_REGISTRY;
  #queue: Promise<unknown> = Promise.resolve();
  #nextId = 0;
  #waiting: { id: number; resolve: (a: ParseAnswer) => void; reject: (e: Error) => void } | null = null;

  /** The file at `path` parsed and validated in the thread; rejects with its ConnectorError when broken. */
  parse(path: string): Promise<{ stamp: string; registry: Registry }> {
    const run = this.#queue.then(() => this.#ask(path));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = null;
    await w?.terminate();
  }

  async #ask(path: string): Promise<{ stamp: string; registry: Registry }> {
    const answer = await new Promise<ParseAnswer>((resolve, reject) => {
      const id = ++this.#nextId;
      this.#waiting = { id, resolve, reject };
      const request: ParseRequest = { id, path };
      this.#start().postMessage(request);
    });
    if (!answer.ok) throw new ConnectorError(answer.code as ErrorCode, answer.message);
    this.#base = applyRegistryDelta(this.#base, answer.delta);
    return { stamp: answer.stamp, registry: this.#base };
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const w = startWorker();
    w.unref();
    const fail = (why: string): void => {
      if (this.#worker === w) this.#worker = null;
      const waiting = this.#waiting;
      this.#waiting = null;
      waiting?.reject(new RegistryThreadError(`registry parser thread stopped: ${why}`));
    };
    w.on('message', (a: ParseAnswer) => {
      if (this.#waiting?.id !== a.id) return;
      const waiting = this.#waiting;
      this.#waiting = null;
      waiting.resolve(a);
    });
    w.on('error', (e) => fail(e.message));
    w.on('exit', (code) => fail(`exit ${code}`));
    this.#worker = w;
    return w;
  }
}
