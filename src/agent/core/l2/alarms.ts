// SPDX-License-Identifier: UNLICENSED
// Alarms of the Layer-2 core as plain data. An alarm is identified by (code, subject): "split-brain" for
// 192.0.2.10 is a different alarm from "split-brain" for 192.0.2.11. Raising an active alarm only bumps
// its count and last time, so a condition seen on every frame stays one alarm. The set is bounded: a
// flood of distinct subjects (a MAC flood freezing thousands of entries) must not grow memory without
// limit, so beyond `maxAlarms` new subjects are folded into one 'alarm-overflow' alarm.

export const ALARM_CODES = [
  'mac-table-full',
  'mac-move-frozen',
  'neighbour-table-full',
  'neighbour-static-conflict',
  'split-brain',
  'bpdu-from-tunnel',
  'own-address-conflict',
  'bum-rate-exceeded',
  'proxy-miss-rate',
  'alarm-overflow',
] as const;
export type AlarmCode = (typeof ALARM_CODES)[number];

export type AlarmSeverity = 'critical' | 'major' | 'minor' | 'warning';

/** Severity is a property of the condition, not of the call site, so status output is consistent. */
export const ALARM_SEVERITY: Readonly<Record<AlarmCode, AlarmSeverity>> = Object.freeze({
  'mac-table-full': 'major',
  'mac-move-frozen': 'major',
  'neighbour-table-full': 'major',
  'neighbour-static-conflict': 'major',
  'split-brain': 'critical',
  'bpdu-from-tunnel': 'critical',
  'own-address-conflict': 'critical',
  'bum-rate-exceeded': 'warning',
  'proxy-miss-rate': 'warning',
  'alarm-overflow': 'minor',
});

export interface Alarm {
  readonly code: AlarmCode;
  readonly severity: AlarmSeverity;
  /** What the alarm is about: a MAC, an IP, a BUM class and direction, or '' for the whole device. */
  readonly subject: string;
  readonly message: string;
  /** Monotonic ms of the first raise of this episode and of the latest raise. */
  readonly firstMs: number;
  readonly lastMs: number;
  /** Raises in this episode. */
  readonly count: number;
  readonly active: boolean;
  /** When the condition ended, null while active. */
  readonly clearedMs: number | null;
}

export interface AlarmsSnapshot {
  readonly active: readonly Alarm[];
  /** Cleared alarms kept for `keepClearedMs` so a status reader sees what happened recently. */
  readonly cleared: readonly Alarm[];
}

export interface AlarmSetOptions {
  /** Distinct (code, subject) pairs kept, active and cleared together. Default 256. */
  maxAlarms?: number;
  /** How long a cleared alarm stays visible. Default 1 h. */
  keepClearedMs?: number;
}

interface MutableAlarm {
  code: AlarmCode;
  severity: AlarmSeverity;
  subject: string;
  message: string;
  firstMs: number;
  lastMs: number;
  count: number;
  active: boolean;
  clearedMs: number | null;
}

const OVERFLOW_SUBJECT = '';

export class AlarmSet {
  readonly maxAlarms: number;
  readonly keepClearedMs: number;
  // Two levels (code, then subject) so raising with constant strings allocates nothing.
  readonly #byCode = new Map<AlarmCode, Map<string, MutableAlarm>>();
  #size = 0;
  #activeCount = 0;
  /**
   * Told when an episode starts (a new or a cleared alarm raised) and when it ends, so the agent can log
   * it: `logread` on site must show a split brain. Not told for repeats within an episode.
   */
  onChange: ((what: 'raised' | 'cleared', alarm: Readonly<MutableAlarm>) => void) | null = null;

  constructor(options: AlarmSetOptions = {}) {
    this.maxAlarms = Math.max(1, options.maxAlarms ?? 256);
    this.keepClearedMs = Math.max(0, options.keepClearedMs ?? 3_600_000);
  }

  get size(): number {
    return this.#size;
  }

  get activeCount(): number {
    return this.#activeCount;
  }

  /** Raises (or re-raises) an alarm. A cleared alarm raised again starts a new episode. */
  raise(code: AlarmCode, subject: string, now: number, message = ''): void {
    let bySubject = this.#byCode.get(code);
    const existing = bySubject?.get(subject);
    if (existing) {
      if (!existing.active) {
        existing.active = true;
        existing.firstMs = now;
        existing.count = 0;
        existing.clearedMs = null;
        this.#activeCount++;
        if (message) existing.message = message;
        existing.count++;
        existing.lastMs = now;
        this.onChange?.('raised', existing);
        return;
      }
      existing.count++;
      existing.lastMs = now;
      if (message) existing.message = message;
      return;
    }
    if (this.#size >= this.maxAlarms) {
      const freed = this.#activeCount < this.#size && this.#evictOneCleared();
      if (!freed) {
        if (code !== 'alarm-overflow') {
          this.raise('alarm-overflow', OVERFLOW_SUBJECT, now, `more than ${this.maxAlarms} distinct alarms; latest ${code} ${subject}`);
          return;
        }
        // The overflow alarm itself always gets a slot: it takes the place of the oldest entry.
        this.#evictOldest();
      }
    }
    if (!bySubject) {
      bySubject = new Map();
      this.#byCode.set(code, bySubject);
    }
    const alarm: MutableAlarm = {
      code,
      severity: ALARM_SEVERITY[code],
      subject,
      message,
      firstMs: now,
      lastMs: now,
      count: 1,
      active: true,
      clearedMs: null,
    };
    bySubject.set(subject, alarm);
    this.#size++;
    this.#activeCount++;
    this.onChange?.('raised', alarm);
  }

  /** Ends an alarm's episode. Returns true when it was active. */
  clear(code: AlarmCode, subject: string, now: number): boolean {
    const a = this.#byCode.get(code)?.get(subject);
    if (!a || !a.active) return false;
    a.active = false;
    a.clearedMs = now;
    this.#activeCount--;
    this.onChange?.('cleared', a);
    return true;
  }

  /** Clears every active alarm with this code (e.g. all 'bum-rate-exceeded' once traffic is calm). */
  clearCode(code: AlarmCode, now: number): number {
    const m = this.#byCode.get(code);
    if (!m) return 0;
    let n = 0;
    for (const a of m.values()) {
      if (a.active) {
        a.active = false;
        a.clearedMs = now;
        this.#activeCount--;
        n++;
        this.onChange?.('cleared', a);
      }
    }
    return n;
  }

  /**
   * Clears active alarms of `code` not raised again for `idleMs`: for conditions only visible while they
   * happen (rate limits hit, a conflicting claim seen), "ended" means "not seen for a while".
   */
  clearIdle(code: AlarmCode, idleMs: number, now: number): number {
    const m = this.#byCode.get(code);
    if (!m) return 0;
    let n = 0;
    for (const a of m.values()) {
      if (a.active && now - a.lastMs >= idleMs) {
        a.active = false;
        a.clearedMs = now;
        this.#activeCount--;
        n++;
        this.onChange?.('cleared', a);
      }
    }
    return n;
  }

  isActive(code: AlarmCode, subject: string): boolean {
    return this.#byCode.get(code)?.get(subject)?.active === true;
  }

  /** Active subjects of one code, for housekeeping that re-checks conditions. */
  activeSubjects(code: AlarmCode): string[] {
    const out: string[] = [];
    const m = this.#byCode.get(code);
    if (m) for (const a of m.values()) if (a.active) out.push(a.subject);
    return out;
  }

  /** Forgets cleared alarms older than keepClearedMs. */
  prune(now: number): void {
    for (const [code, m] of this.#byCode) {
      for (const [subject, a] of m) {
        if (!a.active && a.clearedMs !== null && now - a.clearedMs >= this.keepClearedMs) {
          m.delete(subject);
          this.#size--;
        }
      }
      if (m.size === 0) this.#byCode.delete(code);
    }
  }

  /** Frozen copy, sorted by severity then first time, safe to hand to status output. */
  snapshot(now: number): AlarmsSnapshot {
    this.prune(now);
    const active: Alarm[] = [];
    const cleared: Alarm[] = [];
    for (const m of this.#byCode.values()) {
      for (const a of m.values()) (a.active ? active : cleared).push(Object.freeze({ ...a }));
    }
    const rank: Record<AlarmSeverity, number> = { critical: 0, major: 1, minor: 2, warning: 3 };
    const order = (x: Alarm, y: Alarm): number => rank[x.severity] - rank[y.severity] || x.firstMs - y.firstMs;
    active.sort(order);
    cleared.sort((x, y) => (y.clearedMs ?? 0) - (x.clearedMs ?? 0));
    return Object.freeze({ active: Object.freeze(active), cleared: Object.freeze(cleared) });
  }

  #evictOneCleared(): boolean {
    let victim: MutableAlarm | undefined;
    for (const m of this.#byCode.values()) {
      for (const a of m.values()) {
        if (!a.active && (victim === undefined || (a.clearedMs ?? 0) < (victim.clearedMs ?? 0))) victim = a;
      }
    }
    if (!victim) return false;
    this.#byCode.get(victim.code)?.delete(victim.subject);
    this.#size--;
    return true;
  }

  #evictOldest(): void {
    let victim: MutableAlarm | undefined;
    for (const m of this.#byCode.values()) {
      for (const a of m.values()) if (victim === undefined || a.lastMs < victim.lastMs) victim = a;
    }
    if (!victim) return;
    this.#byCode.get(victim.code)?.delete(victim.subject);
    this.#size--;
    if (victim.active) this.#activeCount--;
  }
}
