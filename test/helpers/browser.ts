// SPDX-License-Identifier: UNLICENSED
// A real browser for tests: Debian's Chromium, headless, driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: JSON messages separated by NUL on fds 3 and 4), so no WebSocket client and no
// browser download are needed. Just enough of the protocol for page tests: open a page, evaluate
// script in it, wait for a condition, take a screenshot.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

interface Pending {
  resolve(v: Record<string, unknown>): void;
  reject(e: Error): void;
}

export interface Page {
  /** Evaluates `expression` in the page (promises awaited) and returns its JSON value. */
  evaluate<T>(expression: string): Promise<T>;
  navigate(url: string): Promise<void>;
  /** Polls `expression` until it is truthy; returns its value, or throws with `what` after `timeoutMs`. */
  waitFor<T>(what: string, expression: string, timeoutMs?: number): Promise<T>;
  screenshot(): Promise<Buffer>;
}

export interface Browser {
  newPage(width?: number, height?: number): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Starts headless Chromium. `insecureCerts` accepts the test PKI's server certificate (tests only: the
 * console's certificate is issued by a CA made for the test).
 */
export async function launchBrowser(o: { insecureCerts?: boolean } = {}): Promise<Browser> {
  if (!CHROMIUM) throw new Error('chromium is not installed (apt-get install chromium)');
  const profile = mkdtempSync(join(tmpdir(), 'ck-chromium-'));
  const child: ChildProcess = spawn(
    CHROMIUM,
    [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-extensions',
      '--no-first-run',
      '--remote-debugging-pipe',
      `--user-data-dir=${profile}`,
      ...(o.insecureCerts ? ['--ignore-certificate-errors'] : []),
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
  );
  const toBrowser = child.stdio[3] as Writable;
  const fromBrowser = child.stdio[4] as Readable;
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4_000)));
  let nextId = 1;
  const pending = new Map<number, Pending>();
  let buf = '';
  fromBrowser.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    for (let i = buf.indexOf('\0'); i >= 0; i = buf.indexOf('\0')) {
      const msg = JSON.parse(buf.slice(0, i)) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
      buf = buf.slice(i + 1);
      const p = msg.id === undefined ? undefined : pending.get(msg.id);
      if (!p || msg.id === undefined) continue;
      pending.delete(msg.id);
      if (msg.error) p.reject(new Error(msg.error.message));
      else p.resolve(msg.result ?? {});
    }
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.once('exit', () => {
    for (const p of pending.values()) p.reject(new Error(`chromium exited; its stderr ends with: ${stderr.slice(-500)}`));
    pending.clear();
  });
  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      toBrowser.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
    });
  await send('Browser.getVersion');

  return {
    async newPage(width = 1280, height = 800) {
      const { targetId } = (await send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
      const { sessionId } = (await send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
      const s = (method: string, params: Record<string, unknown> = {}) => send(method, params, sessionId);
      await s('Page.enable');
      await s('Runtime.enable');
      await s('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: width < 700 });
      const page: Page = {
        async evaluate<T>(expression: string): Promise<T> {
          const r = (await s('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true })) as {
            result: { value?: unknown };
            exceptionDetails?: { text: string; exception?: { description?: string } };
          };
          if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
          return r.result.value as T;
        },
        async navigate(url: string) {
          await s('Page.navigate', { url });
          await page.waitFor('the page to load', "document.readyState === 'complete'", 10_000);
        },
        async waitFor<T>(what: string, expression: string, timeoutMs = 10_000): Promise<T> {
          const until = Date.now() + timeoutMs;
          for (;;) {
            const v = await page.evaluate<T>(expression).catch(() => undefined);
            if (v) return v;
            if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
            await new Promise((r) => setTimeout(r, 50));
          }
        },
        async screenshot() {
          const { data } = (await s('Page.captureScreenshot', { format: 'png' })) as { data: string };
          return Buffer.from(data, 'base64');
        },
      };
      return page;
    },
    async close() {
      await send('Browser.close').catch(() => undefined);
      const killer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(killer);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
