// SPDX-License-Identifier: UNLICENSED
// One scrape for a headend of several processes: each worker's Prometheus text gets a `worker` label on
// every series and the families are merged, so each family's HELP and TYPE appear once (the format
// forbids repeating them) and an operator sums with `sum without (worker)`. Pure.

interface Family {
  head: string[];
  samples: string[];
}

/** Inserts `worker="N"` as the first label of one sample line. */
function label(line: string, worker: string): string {
  const sp = line.indexOf(' ');
  const brace = line.indexOf('{');
  if (brace >= 0 && brace < sp) {
    const rest = line.slice(brace + 1);
    return `${line.slice(0, brace + 1)}worker="${worker}"${rest.startsWith('}') ? '' : ','}${rest}`;
  }
  return `${line.slice(0, sp)}{worker="${worker}"}${line.slice(sp)}`;
}

const familyOf = (sample: string): string => {
  const end = sample.search(/[{ ]/);
  return end < 0 ? sample : sample.slice(0, end);
};

/** `parts`: the primary's own text (no worker label) and each worker's. Families keep their first order. */
export function mergeExpositions(parts: readonly { worker: string | null; text: string }[]): string {
  const families = new Map<string, Family>();
  const get = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { head: [], samples: [] }));
    return f;
  };
  for (const { worker, text } of parts) {
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const m = /^# (HELP|TYPE) (\S+) /.exec(line);
      if (m) {
        const f = get(m[2] ?? '');
        if (!f.head.some((h) => h.startsWith(`# ${m[1]} `))) f.head.push(line);
        continue;
      }
      if (line.startsWith('#')) continue;
      get(familyOf(line)).samples.push(worker === null ? line : label(line, worker));
    }
  }
  let out = '';
  for (const f of families.values()) {
    if (f.samples.length === 0) continue;
    for (const h of f.head) out += h + '\n';
    for (const s of f.samples) out += s + '\n';
  }
  return out;
}
