// SPDX-License-Identifier: UNLICENSED
// One unit's page: its facts, the throughput and RTT charts drawn from the live updates, the 24-hour
// tunnel bar, its own report (alarms, tables, counters) and its sessions and history.
import { $, SAMPLES, SVG, api, cell, fillRows, since, state } from './common.js';

/** Bytes counters of every online unit, one sample per live update, for the throughput chart. */
export function sample(units, at) {
  for (const u of units) {
    let s = state.samples.get(u.serial);
    if (!u.online) {
      state.samples.delete(u.serial);
      continue;
    }
    if (!s) state.samples.set(u.serial, (s = []));
    const last = s[s.length - 1];
    // A new session starts its counters again: start the series again too.
    if (last && (u.bytesIn < last.in || u.bytesOut < last.out)) s.length = 0;
    if (!last || at > last.t) s.push({ t: at, in: u.bytesIn, out: u.bytesOut, rtt: u.rttMs, jitter: u.jitterMs });
    if (s.length > SAMPLES) s.shift();
  }
}

export const mbits = (bytes, ms) => (ms > 0 ? (bytes * 8) / ms / 1000 : 0);

/** A unit's throughput between its last two live samples, Mbit/s each way; null before there are two. */
export function rateNow(serial) {
  const s = state.samples.get(serial) ?? [];
  if (s.length < 2) return null;
  const [a, b] = s.slice(-2);
  return { in: mbits(b.in - a.in, b.t - a.t), out: mbits(b.out - a.out, b.t - a.t) };
}

export function renderChart(serial) {
  const s = state.samples.get(serial) ?? [];
  const rates = [];
  for (let i = 1; i < s.length; i++) {
    const dt = s[i].t - s[i - 1].t;
    rates.push({ t: s[i].t, in: mbits(s[i].in - s[i - 1].in, dt), out: mbits(s[i].out - s[i - 1].out, dt) });
  }
  const max = Math.max(0.001, ...rates.map((r) => Math.max(r.in, r.out)));
  const t1 = s.length ? s[s.length - 1].t : Date.now();
  // The window is what was sampled, up to 5 minutes: a page opened a moment ago draws across the width.
  const t0 = Math.min(t1 - 10_000, Math.max(s.length ? s[0].t : t1, t1 - SAMPLES * 1000));
  const pts = (k) => rates.map((r) => `${(((r.t - t0) / (t1 - t0)) * 600).toFixed(1)},${(118 - (r[k] / max) * 114).toFixed(1)}`).join(' ');
  $('#unit-chart-in').setAttribute('points', pts('in'));
  $('#unit-chart-out').setAttribute('points', pts('out'));
  const now = rates[rates.length - 1];
  $('#unit-chart-caption').textContent = now
    ? `From the site (blue) ${now.in.toFixed(2)} Mbit/s, to the site (orange) ${now.out.toFixed(2)} Mbit/s now; peak ${max.toFixed(2)} Mbit/s; ${rates.length} samples`
    : 'No samples yet: the chart fills while this page is open and the unit is online.';
}

/** RTT (blue) and jitter (orange) from the same samples: each poll carries the headend's latest probe. */
export function renderRtt(serial) {
  const s = (state.samples.get(serial) ?? []).filter((x) => x.rtt !== null && x.rtt !== undefined);
  const max = Math.max(1, ...s.map((x) => Math.max(x.rtt, x.jitter ?? 0))) * 1.1;
  const t1 = s.length ? s[s.length - 1].t : Date.now();
  const t0 = Math.min(t1 - 10_000, Math.max(s.length ? s[0].t : t1, t1 - SAMPLES * 1000));
  const pts = (k) =>
    s
      .filter((x) => x[k] !== null && x[k] !== undefined)
      .map((x) => `${(((x.t - t0) / (t1 - t0)) * 600).toFixed(1)},${(118 - (x[k] / max) * 114).toFixed(1)}`)
      .join(' ');
  $('#unit-rtt-line').setAttribute('points', pts('rtt'));
  $('#unit-jitter-line').setAttribute('points', pts('jitter'));
  const now = s[s.length - 1];
  $('#unit-rtt-caption').textContent = now
    ? `RTT (blue) ${now.rtt.toFixed(2)} ms, jitter (orange) ${now.jitter === null ? '—' : `${now.jitter.toFixed(2)} ms`} now; highest RTT ${Math.max(...s.map((x) => x.rtt)).toFixed(2)} ms; the headend probes every unit every 5 s`
    : 'No RTT yet: the headend probes every unit every 5 s.';
}

/** Up intervals of the last 24 h from the history (newest first): connect opens one, disconnect closes it. */
export function renderTimeline(d) {
  const svg = $('#unit-timeline');
  svg.replaceChildren();
  const t1 = Date.now();
  const t0 = t1 - 24 * 3600 * 1000;
  const spans = [];
  let open = null;
  for (const e of d.history.slice().reverse()) {
    const t = Date.parse(e.time);
    if (e.event === 'connect') open = t;
    else if (e.event === 'disconnect' && open !== null) {
      spans.push([open, t]);
      open = null;
    }
  }
  if (open !== null && d.online) spans.push([open, t1]);
  let upMs = 0;
  for (const [a, b] of spans) {
    const from = Math.max(a, t0);
    if (b <= from) continue;
    upMs += b - from;
    const r = document.createElementNS(SVG, 'rect');
    r.setAttribute('x', (((from - t0) / (t1 - t0)) * 600).toFixed(2));
    r.setAttribute('width', Math.max(0.5, ((b - from) / (t1 - t0)) * 600).toFixed(2));
    r.setAttribute('y', '2');
    r.setAttribute('height', '16');
    r.setAttribute('fill', '#2e8540');
    svg.appendChild(r);
  }
  const drops = d.history.filter((e) => e.event === 'disconnect' && Date.parse(e.time) >= t0).length;
  const pct = (upMs / (t1 - t0)) * 100;
  const shown = pct > 0 && pct < 0.1 ? 'under 0.1' : pct.toFixed(1);
  $('#unit-timeline-caption').textContent = `Up ${shown} % of the last 24 hours (green), ${drops} disconnects`;
}

export function renderHealth(h) {
  $('#unit-health').hidden = !h || !h.reportedAt;
  if (!h || !h.reportedAt) {
    $('#unit-health-caption').textContent =
      'No health report from this unit: the console does not watch the OTA broker (otaBroker), the unit is not connected to it, or its agent predates health reports.';
    return;
  }
  const cut = h.truncated ? ' Tables cut to fit one message.' : '';
  $('#unit-health-caption').textContent =
    `As the unit reported at ${h.reportedAt} (every 10 s): agent ${h.phase ?? '?'}, tunnel ${h.tunnel.state ?? '?'}; ` +
    `${h.macTotal} MACs, ${h.neighbourTotal} neighbours, ${h.alarms.length} active alarms.${cut}`;
  fillRows($('#unit-alarms tbody'), h.alarms, ['code', 'severity', 'subject', 'message', (a) => `${a.count ?? 1} ×`]);
  fillRows($('#unit-macs tbody'), h.macTable, ['mac', 'side', 'ageS', 'state']);
  fillRows($('#unit-neighbours tbody'), h.neighbours, ['ip', 'mac', 'side', 'ageS', 'source']);
  fillRows(
    $('#unit-counters tbody'),
    h.counters.map(([name, value]) => ({ name, value })),
    ['name', 'value'],
  );
}

export function renderUnit() {
  const d = state.detail;
  if (!d) return;
  const live = state.units.find((u) => u.serial === d.serial) ?? d;
  $('#unit-serial').textContent = d.serial;
  const facts = $('#unit-facts');
  facts.replaceChildren();
  const fact = (k, v) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v === null || v === undefined || v === '' ? '—' : String(v);
    facts.append(dt, dd);
    return dd;
  };
  fact('State', d.state === 'allowed' ? 'waiting for claim' : d.state);
  fact('Tenant', d.tenant);
  fact('Segment', d.segment);
  fact('Site', d.site);
  fact('Tunnel', live.online ? `up for ${since(live.sinceMs)}` : 'down').dataset.tunnel = live.online ? 'up' : 'down';
  fact('Headend', live.headend);
  fact('Remote', live.remote);
  fact('Agent version', live.agentVersion);
  fact('Transport', d.sessions.map((s) => s.transport).join(', '));
  fact(
    'RTT / jitter',
    live.rttMs === null || live.rttMs === undefined
      ? null
      : `${live.rttMs.toFixed(2)} / ${live.jitterMs === null ? '—' : live.jitterMs.toFixed(2)} ms`,
  ).dataset.rtt = String(live.rttMs ?? '');
  fact(
    'OTA',
    d.health
      ? [d.health.online === false ? 'offline' : d.health.online ? 'online' : null, d.health.otaVersion, d.health.otaJob]
          .filter(Boolean)
          .join(', ')
      : null,
  );
  renderChart(d.serial);
  renderRtt(d.serial);
  renderTimeline(d);
  renderHealth(d.health);
  const sb = $('#unit-sessions tbody');
  sb.replaceChildren();
  for (const s of d.sessions) {
    const tr = document.createElement('tr');
    for (const v of [
      s.headend,
      s.vni,
      s.vlan || '',
      s.transport,
      s.remote,
      since(s.startedAtMs),
      `${s.framesIn} / ${s.framesOut}`,
      `${s.bytesIn} / ${s.bytesOut}`,
    ])
      cell(tr, v);
    sb.appendChild(tr);
  }
  const hb = $('#unit-history tbody');
  hb.replaceChildren();
  for (const e of d.history) {
    const tr = document.createElement('tr');
    tr.dataset.event = e.event;
    const bytes = e.bytesIn === null ? '' : `${e.bytesIn} / ${e.bytesOut}`;
    for (const v of [e.seq, e.time, e.event, e.reason ?? e.transport, e.remote, bytes]) cell(tr, v);
    hb.appendChild(tr);
  }
}

export async function loadUnit() {
  if (!state.unit) return;
  state.detailAt = Date.now();
  state.detail = await api(`/api/units/${encodeURIComponent(state.unit)}`);
  renderUnit();
}
