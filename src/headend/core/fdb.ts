// SPDX-License-Identifier: UNLICENSED
// Per-segment forwarding database of the headend: MAC -> where it was last seen (a tunnel session or a
// VTEP address). A thin naming layer over the shared MacTable (aging, size bound, MAC-move freeze), with
// sides 'session' and 'vtep', each with a numeric port. One instance per segment, so identical MACs in
// two tenants never meet. Pure: time comes in as an argument.
import { MacTable, type MacLearnResult } from '../../shared/l2/mac-table.js';

export type Port = { kind: 'session'; id: string } | { kind: 'vtep'; address: string };

export class Fdb {
  readonly #table: MacTable<Port['kind']>;
  // Port numbers by session id and by VTEP address: looked up per frame, so no key is built per frame.
  readonly #sessions = new Map<string, number>();
  readonly #vteps = new Map<string, number>();
  readonly #byNumber = new Map<number, Port>();
  #nextPort = 1;

  constructor(ageMs: number, maxEntries: number) {
    // 'latest': neither side outranks the other here, so a flapping MAC is pinned where it was last seen.
    this.#table = new MacTable<Port['kind']>({ ageMs, maxEntries, freezeSide: 'latest' });
  }

  get size(): number {
    return this.#table.size;
  }

  #numbers(port: Port): Map<string, number> {
    return port.kind === 'session' ? this.#sessions : this.#vteps;
  }

  #portNumber(port: Port): number {
    const numbers = this.#numbers(port);
    const name = port.kind === 'session' ? port.id : port.address;
    let n = numbers.get(name);
    if (n === undefined) {
      n = this.#nextPort++;
      numbers.set(name, n);
      this.#byNumber.set(n, port);
    }
    return n;
  }

  /** Records `mac` behind `port`: 'new' / 'moved' when its place changed, 'table-full' / 'ignored-frozen' when not learned. */
  learn(mac: number, port: Port, now: number): MacLearnResult {
    return this.#table.learn(mac, port.kind, this.#portNumber(port), now);
  }

  /** The MACs live behind tunnel sessions (what an EVPN fabric is told this headend holds). */
  sessionMacs(now: number): number[] {
    return this.#table
      .entries(now)
      .filter((e) => e.side === 'session')
      .map((e) => e.key);
  }

  lookup(mac: number, now: number): Port | undefined {
    const e = this.#table.lookup(mac, now);
    return e ? this.#byNumber.get(e.port) : undefined;
  }

  /** Forgets everything learned behind the matching ports (a closed session, a VTEP that left). */
  forgetPort(match: (p: Port) => boolean, now = 0): void {
    for (const [n, p] of this.#byNumber) {
      if (!match(p)) continue;
      this.#table.flushPort(p.kind, n, now);
      this.#byNumber.delete(n);
      this.#numbers(p).delete(p.kind === 'session' ? p.id : p.address);
    }
  }
}
