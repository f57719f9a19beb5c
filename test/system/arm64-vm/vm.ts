// SPDX-License-Identifier: UNLICENSED
// One arm64 VM under qemu-system-aarch64 (TCG, cortex-a53, 512 MB, one vCPU: the research measured more
// memory or vCPUs as slower under TCG) and its serial console: markers from /init, and shell commands
// framed @@CK-BEGIN/@@CK-END. qemu exits with 0 on poweroff and on a guest panic alike, so every verdict
// comes from the console, never from qemu's exit code.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export interface VmOptions {
  /** Network namespace qemu runs in; the TAPs named here must already exist there. */
  netns: string;
  kernel: string;
  initrd: string;
  /** ck.* parameters for /init. */
  params: Record<string, string>;
  nics: { tap: string; mac: string }[];
  /** Disk images attached as virtio-blk (vda, vdb, ...), raw. */
  disks?: string[];
  /** Directory shared over 9p (mount tag host0). */
  share?: string;
  /** Called with every console line (for the failure log). */
  onLine?: (line: string) => void;
}

export interface CmdResult {
  rc: number;
  out: string;
  /** Guest uptime when the command started and ended, s. */
  upStart: number;
  upEnd: number;
}

interface Waiter {
  re: RegExp;
  resolve: (m: RegExpMatchArray) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class Vm {
  readonly startedAt = Date.now();
  readonly lines: string[] = [];
  private readonly child: ChildProcess;
  private readonly waiters = new Set<Waiter>();
  private buf = '';
  private seq = 0;
  private exited: string | undefined;

  constructor(private readonly o: VmOptions) {
    const append = ['console=ttyAMA0', 'panic=-1', 'loglevel=4', ...Object.entries(o.params).map(([k, v]) => `ck.${k}=${v}`)];
    const args = ['netns', 'exec', o.netns, 'qemu-system-aarch64', '-M', 'virt', '-cpu', 'cortex-a53', '-m', '512', '-smp', '1'];
    args.push('-accel', 'tcg', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot');
    args.push('-kernel', o.kernel, '-initrd', o.initrd, '-append', append.join(' '));
    o.nics.forEach((n, i) => {
      args.push('-netdev', `tap,id=n${i},ifname=${n.tap},script=no,downscript=no`);
      // Fixed PCI slots and no option ROM (ipxe-qemu is only a Recommends of qemu-system-arm).
      args.push('-device', `virtio-net-pci,netdev=n${i},mac=${n.mac},addr=0x${(2 + i).toString(16)},romfile=`);
    });
    (o.disks ?? []).forEach((d, i) =>
      args.push('-drive', `file=${d},if=none,format=raw,id=d${i}`, '-device', `virtio-blk-pci,drive=d${i}`),
    );
    if (o.share) args.push('-virtfs', `local,path=${o.share},mount_tag=host0,security_model=none,id=host0`);
    args.push('-device', 'virtio-rng-pci');
    this.child = spawn('ip', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    // A write after qemu has gone (poweroff in after()) must not become an uncaught EPIPE.
    this.child.stdin?.on('error', () => undefined);
    this.child.stdout?.on('data', (b: Buffer) => this.feed(b.toString('latin1')));
    this.child.stderr?.on('data', (b: Buffer) => this.feed(b.toString('latin1')));
    this.child.on('exit', (code, sig) => {
      this.exited = `qemu exited (code ${code ?? 'none'}, signal ${sig ?? 'none'})`;
      for (const w of this.waiters) {
        clearTimeout(w.timer);
        w.reject(new Error(`${this.exited} while waiting for ${w.re}; console ends with:\n${this.tail()}`));
      }
      this.waiters.clear();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  tail(n = 40): string {
    return this.lines.slice(-n).join('\n');
  }

  private feed(s: string): void {
    this.buf += s;
    const parts = this.buf.split('\n');
    this.buf = parts.pop() ?? '';
    for (const raw of parts) {
      const line = raw.replace(/\r$/, '');
      this.lines.push(line);
      this.o.onLine?.(line);
      if (/Kernel panic/.test(line)) this.failAll(`guest kernel panic: ${line}`);
      for (const w of this.waiters) {
        const m = line.match(w.re);
        if (m) {
          clearTimeout(w.timer);
          this.waiters.delete(w);
          w.resolve(m);
        }
      }
    }
  }

  private failAll(why: string): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new Error(`${why}; console ends with:\n${this.tail()}`));
    }
    this.waiters.clear();
  }

  /** The first console line from now on matching `re` (or an earlier one when `past`). */
  waitLine(re: RegExp, timeoutMs: number, past = true): Promise<RegExpMatchArray> {
    if (past) {
      for (const l of this.lines) {
        const m = l.match(re);
        if (m) return Promise.resolve(m);
      }
    }
    if (this.exited) return Promise.reject(new Error(`${this.exited}; console ends with:\n${this.tail()}`));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        re,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          reject(new Error(`no console line matching ${re} within ${timeoutMs} ms; console ends with:\n${this.tail()}`));
        }, timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  /** Guest uptime (s) and host ms since qemu started, when /init printed marker `name`. */
  async marker(name: string, timeoutMs: number): Promise<{ up: number; hostMs: number; detail: string }> {
    const m = await this.waitLine(new RegExp(`^@@CK ${name} ([0-9.]+) ?(.*)$`), timeoutMs);
    return { up: Number(m[1]), hostMs: Date.now() - this.startedAt, detail: m[2] ?? '' };
  }

  /** Runs one shell line in the guest (after the `ready` marker) and returns its framed output. */
  async run(cmd: string, timeoutMs = 60_000): Promise<CmdResult> {
    if (cmd.includes('\n')) throw new Error('one line per command');
    const n = ++this.seq;
    const from = this.lines.length;
    const end = this.waitLine(new RegExp(`^@@CK-END ${n} (\\d+) ([0-9.]+)$`), timeoutMs, false);
    this.child.stdin?.write(`${cmd}\n`);
    const m = await end;
    const body = this.lines.slice(from);
    const b = body.findIndex((l) => l.startsWith(`@@CK-BEGIN ${n} `));
    const e = body.findIndex((l) => l.startsWith(`@@CK-END ${n} `));
    const upStart = Number(body[b]?.split(' ')[2] ?? 0);
    return { rc: Number(m[1]), out: body.slice(b + 1, e).join('\n'), upStart, upEnd: Number(m[2]) };
  }

  /** Asks the guest to power off; kills qemu if it has not gone within the bound. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.exited) return;
    const gone = once(this.child, 'exit');
    this.child.stdin?.write('poweroff\n');
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await gone;
    clearTimeout(t);
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}
