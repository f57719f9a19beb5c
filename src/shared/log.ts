// SPDX-License-Identifier: UNLICENSED
// Structured logging: one JSON object per line (servers, audit-friendly) or `level msg k=v` (human and
// the device's logd). Loggers are injected; nothing here is a singleton.

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
export type LogValue = string | number | boolean | undefined | null;
export type LogFields = Readonly<Record<string, LogValue>>;
type LogFn = (msg: string, fields?: LogFields) => void;

export interface Logger {
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  child(fields: LogFields): Logger;
}

export const silentLogger: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  child: () => silentLogger,
};

export type LogFormat = 'json' | 'human';

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  base?: LogFields;
  /** Where lines go; defaults to stderr so stdout stays free for command output. */
  write?: (line: string) => void;
  now?: () => Date;
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

function humanValue(v: LogValue): string {
  const s = String(v);
  return /[\s"=]/.test(s) ? JSON.stringify(s) : s;
}

export function formatLine(format: LogFormat, time: Date, level: LogLevel, msg: string, fields: LogFields): string {
  if (format === 'json') {
    return JSON.stringify({ time: time.toISOString(), level, msg, ...fields });
  }
  const kv = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${humanValue(v)}`)
    .join(' ');
  return `${time.toISOString()} ${level.padEnd(5)} ${msg}${kv ? ' ' + kv : ''}`;
}

let stderrSink: ((line: string) => void) | undefined;

/**
 * stderr, one write per task. When a headend closes thousands of sessions in one task (a shutdown, a
 * site's router dropping every connection), a write per line was a system call each (stderr is
 * synchronous for files and pipes): 5,000 lines held the loop for 77-140 ms. Lines wait at most until the
 * running task ends; the process's exit (process.exit, an uncaught exception) writes what is still held.
 * One per process, because stderr is: each logger's own would each need an exit listener.
 */
function stderrLines(): (line: string) => void {
  if (stderrSink) return stderrSink;
  let held: string[] = [];
  const flush = (): void => {
    if (held.length === 0) return;
    const text = held.join('\n') + '\n';
    held = [];
    process.stderr.write(text);
  };
  process.on('exit', flush);
  stderrSink = (line) => {
    if (held.push(line) === 1) queueMicrotask(flush);
  };
  return stderrSink;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const format = options.format ?? 'json';
  const write = options.write ?? stderrLines();
  const now = options.now ?? (() => new Date());
  const make = (base: LogFields): Logger => {
    const emit =
      (lv: LogLevel): LogFn =>
      (msg, fields) => {
        if (RANK[lv] > RANK[level]) return;
        write(formatLine(format, now(), lv, msg, { ...base, ...fields }));
      };
    return {
      error: emit('error'),
      warn: emit('warn'),
      info: emit('info'),
      debug: emit('debug'),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return make(options.base ?? {});
}

/** Picks level and format from process settings (LOG_LEVEL, LOG_FORMAT); only entry points call this. */
export function loggerFromEnv(env: NodeJS.ProcessEnv, base: LogFields): Logger {
  const lv = env['LOG_LEVEL'];
  const fmt = env['LOG_FORMAT'];
  return createLogger({
    level: LOG_LEVELS.includes(lv as LogLevel) ? (lv as LogLevel) : 'info',
    format: fmt === 'human' ? 'human' : 'json',
    base,
  });
}
