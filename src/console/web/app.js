// SPDX-License-Identifier: UNLICENSED
// The console page: plain browser JavaScript, no framework and no build step, served by the console
// itself (no CDN: datacentres can be air-gapped). It only talks to the JSON API under /api; live
// updates come as server-sent events. Text is set with textContent, never as HTML.
'use strict';

const state = { me: null, csrf: '', units: [], tenants: [], events: null, unit: null, detail: null, detailAt: 0, samples: new Map() };
/** Throughput samples kept per unit: 5 minutes at one-second polls. */
const SAMPLES = 300;
const SVG = 'http://www.w3.org/2000/svg';
const $ = (sel) => document.querySelector(sel);

async function api(path, options = {}) {
  const headers = {
    ...(options.body ? { 'content-type': 'application/json' } : {}),
    ...(state.csrf ? { 'x-csrf-token': state.csrf } : {}),
  };
  const res = await fetch(path, { credentials: 'same-origin', ...options, headers });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text === null || text === undefined ? '' : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

/** A labelled button (the label is what a screen reader says: the action and its object). */
function button(text, label, onClick, cls) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.setAttribute('aria-label', label);
  if (cls) b.className = cls;
  b.addEventListener('click', onClick);
  return b;
}

/** Whether this operator may change what belongs to `tenant` (the server decides; this only hides buttons). */
const mayChange = (tenant) => state.me.role === 'admin' || (state.me.role === 'msp' && state.me.tenants.includes(tenant));

function since(ms) {
  if (!ms) return '';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

function renderFleet() {
  const tbody = $('#fleet-table tbody');
  tbody.replaceChildren();
  for (const u of state.units) {
    const tr = document.createElement('tr');
    tr.dataset.serial = u.serial;
    cell(tr, '').appendChild(button(u.serial, `Open unit ${u.serial}`, () => openUnit(u.serial), 'link'));
    cell(tr, u.state === 'allowed' ? 'waiting for claim' : u.state);
    cell(tr, u.tenant);
    cell(tr, u.segment);
    cell(tr, u.site);
    cell(tr, u.online ? 'up' : 'down', u.online ? 'up' : 'down').dataset.tunnel = u.online ? 'up' : 'down';
    cell(tr, u.agentVersion);
    cell(tr, since(u.sinceMs));
    cell(tr, (u.headend ?? '').replace(/^https?:\/\//, ''));
    cell(
      tr,
      u.rttMs === null || u.rttMs === undefined
        ? ''
        : `${u.rttMs.toFixed(1)} / ${u.jitterMs === null || u.jitterMs === undefined ? '—' : u.jitterMs.toFixed(1)}`,
    );
    const r = rateNow(u.serial);
    cell(tr, r ? `${r.in.toFixed(2)} / ${r.out.toFixed(2)}` : '');
    const actions = cell(tr, '');
    if (u.state === 'allowed' && state.me.role !== 'read-only') {
      const claim = () => {
        $('#claim-serial').value = u.serial;
        $('#claim-tenant').focus();
      };
      actions.appendChild(button('Claim…', `Claim ${u.serial}`, claim));
    } else if (u.state === 'claimed' && mayChange(u.tenant)) {
      const revoke = async () => {
        if (!confirm(`Revoke ${u.serial}? Its tunnel is closed and its certificate will not be renewed.`)) return;
        await api(`/api/units/${encodeURIComponent(u.serial)}/revoke`, { method: 'POST', body: '{}' }).catch((e) => alert(e.message));
      };
      actions.appendChild(button('Revoke', `Revoke ${u.serial}`, revoke));
    }
    tbody.appendChild(tr);
  }
  const online = state.units.filter((u) => u.online).length;
  $('#fleet-summary').textContent = `${state.units.length} units, ${online} online`;
}

async function loadTenants() {
  state.tenants = (await api('/api/tenants')).tenants;
  const tbody = $('#tenants-table tbody');
  tbody.replaceChildren();
  const select = $('#claim-tenant');
  select.replaceChildren();
  const segTenant = $('#segment-tenant');
  const keep = segTenant.value;
  segTenant.replaceChildren();
  for (const t of state.tenants) {
    const tr = document.createElement('tr');
    cell(tr, t.name);
    cell(tr, t.segments.map((s) => `${s.name} (${s.vni})`).join(', '));
    cell(tr, t.units);
    cell(tr, t.online);
    tbody.appendChild(tr);
    const o = document.createElement('option');
    o.value = t.name;
    o.textContent = t.name;
    select.appendChild(o);
    segTenant.appendChild(o.cloneNode(true));
  }
  if (keep) segTenant.value = keep;
  // An msp operator may claim for its own tenants even before any unit of theirs is listed.
  for (const t of state.me.role === 'msp' ? state.me.tenants : []) {
    if (![...select.options].some((o) => o.value === t)) {
      const o = document.createElement('option');
      o.value = t;
      o.textContent = t;
      select.appendChild(o);
    }
  }
}

async function loadAudit() {
  const q = $('#audit-q').value;
  const { records } = await api(`/api/audit?limit=500&q=${encodeURIComponent(q)}`);
  $('#audit-export').href = `/api/audit/export?q=${encodeURIComponent(q)}`;
  const tbody = $('#audit-table tbody');
  tbody.replaceChildren();
  for (const r of records.slice().reverse()) {
    const tr = document.createElement('tr');
    for (const k of ['seq', 'time', 'event', 'tenant', 'serial', 'remote', 'reason']) cell(tr, r[k]);
    tbody.appendChild(tr);
  }
}

/** Bytes counters of every online unit, one sample per live update, for the throughput chart. */
function sample(units, at) {
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

const mbits = (bytes, ms) => (ms > 0 ? (bytes * 8) / ms / 1000 : 0);

/** A unit's throughput between its last two live samples, Mbit/s each way; null before there are two. */
function rateNow(serial) {
  const s = state.samples.get(serial) ?? [];
  if (s.length < 2) return null;
  const [a, b] = s.slice(-2);
  return { in: mbits(b.in - a.in, b.t - a.t), out: mbits(b.out - a.out, b.t - a.t) };
}

function renderChart(serial) {
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
function renderRtt(serial) {
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
function renderTimeline(d) {
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

/** Fills a table body with one row per object, the named columns in order. */
function fillRows(tbody, rows, cols) {
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement('tr');
    for (const c of cols) cell(tr, typeof c === 'function' ? c(r) : r[c]);
    tbody.appendChild(tr);
  }
}

function renderHealth(h) {
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

function renderUnit() {
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

async function loadUnit() {
  if (!state.unit) return;
  state.detailAt = Date.now();
  state.detail = await api(`/api/units/${encodeURIComponent(state.unit)}`);
  renderUnit();
}

function openUnit(serial) {
  state.unit = serial;
  state.detail = null;
  show('unit');
}

async function loadRollouts() {
  const { rollouts, problems } = await api('/api/rollouts');
  $('#rollouts-problems').textContent = problems.length ? `Not shown: ${problems.join('; ')}` : '';
  const tbody = $('#rollouts-table tbody');
  tbody.replaceChildren();
  const ub = $('#rollout-units tbody');
  ub.replaceChildren();
  for (const r of rollouts) {
    const tr = document.createElement('tr');
    tr.dataset.rollout = r.id;
    tr.dataset.status = r.status;
    const c = r.counts;
    const status = r.status === 'paused' && r.pauseReason ? `paused: ${r.pauseReason}` : r.status;
    for (const v of [r.id, r.version, status, `${c.inCohort} of ${c.units}`, c.succeeded, c.failed, c.inProgress, r.createdAt]) cell(tr, v);
    const actions = document.createElement('td');
    if (state.rolloutControl && state.me.role === 'admin') {
      if (r.status === 'active') actions.appendChild(button('Pause', `Pause rollout ${r.id}`, () => steerRollout(r.id, 'pause')));
      if (r.status === 'paused') actions.appendChild(button('Resume', `Resume rollout ${r.id}`, () => steerRollout(r.id, 'resume')));
      if (r.status === 'completed' && c.inCohort < c.units)
        actions.appendChild(
          button('Widen to all', `Widen rollout ${r.id} to every unit`, () => steerRollout(r.id, 'widen', { cohort: '100%' })),
        );
    }
    tr.appendChild(actions);
    tbody.appendChild(tr);
    for (const u of r.units) {
      const row = document.createElement('tr');
      row.dataset.serial = u.serial;
      const state = u.percent !== null && u.state === 'downloading' ? `downloading ${u.percent} %` : u.state;
      for (const v of [r.id, u.serial, u.tenant, u.inCohort ? 'yes' : 'no', state, u.version, u.reason, u.updatedAt]) cell(row, v);
      ub.appendChild(row);
    }
  }
}

async function steerRollout(id, action, body = {}) {
  try {
    const r = await api(`/api/rollouts/${encodeURIComponent(id)}/${action}`, { method: 'POST', body: JSON.stringify(body) });
    $('#rollout-result').textContent = `rollout ${r.rolloutId} is ${r.status}`;
  } catch (err) {
    // A rollout paused at its failure threshold: the operator is asked before the failures are accepted.
    if (action === 'resume' && /acceptFailures/.test(err.message) && confirm(`${err.message}\n\nResume anyway?`))
      return steerRollout(id, action, { acceptFailures: true });
    $('#rollout-result').textContent = `not ${action}d: ${err.message}`;
  }
  await loadRollouts().catch(() => {});
}

async function loadReleases() {
  const { releases } = await api('/api/releases');
  fillSelect(
    $('#rollout-release'),
    releases.map((r) => [r.name, `${r.version} (${r.name})`]),
  );
}

/** Replaces a select's options with [value, text] pairs, keeping the current choice when it is still offered. */
function fillSelect(select, pairs) {
  const keep = select.value;
  select.replaceChildren();
  for (const [value, text] of pairs) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text;
    select.appendChild(o);
  }
  if (keep) select.value = keep;
}

/** One drill's timeline: its events on a line from its start to its end (or now), and as a table. */
async function loadDrill(id, kind = 'drills') {
  const d = await api(`/api/${kind}/${encodeURIComponent(id)}`);
  $('#drill-detail').hidden = false;
  $('#drill-detail-title').textContent =
    kind === 'drills' ? `Drill ${d.id} (${d.tenant}, ${d.kind}, ${d.state})` : `Failover ${d.id} (${d.tenant}, ${d.segment}, ${d.state})`;
  const t0 = Date.parse(d.startedAt);
  const t1 = Math.max(t0 + 1000, d.endedAt ? Date.parse(d.endedAt) : Date.now());
  const svg = $('#drill-timeline');
  svg.replaceChildren();
  const axis = document.createElementNS(SVG, 'line');
  for (const [k, v] of Object.entries({ x1: 5, x2: 595, y1: 20, y2: 20, stroke: '#8a96a3', 'stroke-width': 2 }))
    axis.setAttribute(k, String(v));
  svg.appendChild(axis);
  const tbody = $('#drill-events tbody');
  tbody.replaceChildren();
  for (const e of d.timeline) {
    const t = Date.parse(e.t);
    const dot = document.createElementNS(SVG, 'circle');
    dot.setAttribute('cx', (5 + ((t - t0) / (t1 - t0)) * 590).toFixed(1));
    dot.setAttribute('cy', '20');
    dot.setAttribute('r', '6');
    dot.setAttribute('fill', e.ok === false ? '#b3261e' : e.ok === true ? '#2e8540' : '#2f5f8f');
    const title = document.createElementNS(SVG, 'title');
    title.textContent = `${e.event} at +${((t - t0) / 1000).toFixed(1)} s`;
    dot.appendChild(title);
    svg.appendChild(dot);
    const tr = document.createElement('tr');
    tr.dataset.event = e.event;
    const details = Object.entries(e)
      .filter(([k]) => k !== 't' && k !== 'event')
      .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
      .join(', ');
    for (const v of [e.t, `+${((t - t0) / 1000).toFixed(1)} s`, e.event, details]) cell(tr, v);
    tbody.appendChild(tr);
  }
  const failed = d.timeline.filter((e) => e.ok === false).length;
  $('#drill-timeline-caption').textContent =
    `${d.timeline.length} events over ${((t1 - t0) / 1000).toFixed(1)} s${failed ? `, ${failed} failed (red)` : ''}; green: a check that passed`;
}

/** A link to a drill's or failover's report (self-contained HTML, opened in a new tab). */
function reportLink(kind, id) {
  const a = document.createElement('a');
  a.href = `/api/${kind}/${encodeURIComponent(id)}/report`;
  a.target = '_blank';
  a.rel = 'noopener';
  a.textContent = ' report';
  a.setAttribute('aria-label', `Report of ${kind === 'drills' ? 'drill' : 'failover'} ${id}`);
  return a;
}

async function loadFailovers() {
  const { failovers } = await api('/api/failovers');
  const tbody = $('#failovers-table tbody');
  tbody.replaceChildren();
  for (const f of failovers.slice().reverse()) {
    const tr = document.createElement('tr');
    tr.dataset.failover = f.id;
    tr.dataset.state = f.state;
    const first = cell(tr, '');
    const open = () => loadDrill(f.id, 'failovers').catch((e) => ($('#drill-result').textContent = e.message));
    first.appendChild(button(f.id, `Open failover ${f.id}`, open, 'link'));
    first.appendChild(reportLink('failovers', f.id));
    for (const v of [f.tenant, f.segment, f.gateway, f.state, f.startedAt, f.endedAt ?? '']) cell(tr, v);
    tbody.appendChild(tr);
  }
}

async function loadDrills() {
  loadFailovers().catch((e) => ($('#drill-result').textContent = e.message));
  const { drills } = await api('/api/drills');
  const tbody = $('#drills-table tbody');
  tbody.replaceChildren();
  for (const d of drills.slice().reverse()) {
    const tr = document.createElement('tr');
    tr.dataset.drill = d.id;
    tr.dataset.state = d.state;
    const open = () => loadDrill(d.id).catch((e) => ($('#drill-result').textContent = e.message));
    const first = cell(tr, '');
    first.appendChild(button(d.id, `Open drill ${d.id}`, open, 'link'));
    if (d.state !== 'running') first.appendChild(reportLink('drills', d.id));
    for (const v of [
      d.tenant,
      d.kind,
      d.sandboxSegment ?? d.segment,
      d.state,
      d.startedAt,
      d.state === 'running' ? `${Math.round(d.remainingS / 60)} min` : '',
    ]) {
      cell(tr, v);
    }
    const actions = cell(tr, '');
    if (d.state === 'running' && mayChange(d.tenant)) {
      const end = async () => {
        await api(`/api/drills/${encodeURIComponent(d.id)}/end`, { method: 'POST', body: '{}' }).catch((e) => alert(e.message));
        await loadDrills();
      };
      actions.appendChild(button('End', `End drill ${d.id}`, end));
    }
    tbody.appendChild(tr);
  }
  const names = state.me.role === 'msp' ? state.me.tenants : state.tenants.map((t) => t.name);
  fillSelect(
    $('#drill-tenant'),
    names.map((n) => [n, n]),
  );
}

function show(view) {
  for (const v of ['fleet', 'unit', 'tenants', 'rollouts', 'drills', 'audit']) $(`#${v}-view`).hidden = v !== view;
  for (const b of document.querySelectorAll('nav [data-view]')) {
    if (b.dataset.view === view) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  if (view === 'tenants') loadTenants().catch(() => {});
  if (view === 'audit') loadAudit().catch(() => {});
  clearInterval(state.rolloutTimer);
  if (view === 'rollouts') {
    const refresh = () => loadRollouts().catch((e) => ($('#rollouts-problems').textContent = e.message));
    refresh();
    if (state.rolloutControl && state.me.role === 'admin') loadReleases().catch((e) => ($('#rollout-result').textContent = e.message));
    // Cohorts move while the page is open: the state files are read again every 2 s.
    state.rolloutTimer = setInterval(refresh, 2000);
  }
  if (view === 'drills') loadDrills().catch((e) => ($('#drill-result').textContent = e.message));
  if (view === 'unit')
    loadUnit().then(
      () => $('#unit-back').focus(),
      (e) => ($('#unit-facts').textContent = e.message),
    );
  else state.unit = null;
}

function listen() {
  state.events?.close();
  state.events = new EventSource('/api/events');
  state.events.addEventListener('units', (e) => {
    const d = JSON.parse(e.data);
    const before = state.units.find((u) => u.serial === state.unit);
    state.units = d.units;
    sample(d.units, d.at);
    renderFleet();
    if (state.unit) {
      const now = state.units.find((u) => u.serial === state.unit);
      // A new session or a lost one adds history: fetch it; otherwise the live row is enough.
      const changed = now && (!before || now.online !== before.online || now.sinceMs !== before.sinceMs);
      if (changed || Date.now() - state.detailAt > 5_000) loadUnit().catch(() => {});
      else renderUnit();
    }
    const bad = d.unreachable.map((u) => u.headend).join(', ');
    $('#live').textContent = `live, as of ${new Date(d.at).toLocaleTimeString()}${bad ? `; unreachable: ${bad}` : ''}`;
  });
  state.events.onerror = () => ($('#live').textContent = 'live updates interrupted; retrying');
}

async function enter(me) {
  state.me = me;
  state.csrf = me.csrf;
  $('#login-view').hidden = true;
  $('#nav').hidden = false;
  $('#who').textContent = `${me.name} (${me.role}${me.tenants.length ? `: ${me.tenants.join(', ')}` : ''})`;
  $('#claim-form').hidden = me.role === 'read-only';
  $('#tenant-form').hidden = me.role !== 'admin';
  $('#drill-form').hidden = me.role === 'read-only';
  $('#audit-verify').hidden = me.role === 'msp';
  const features = await api('/api/config').catch(() => ({ drills: false, rollouts: false }));
  $('#nav-drills').hidden = !features.drills;
  $('#nav-rollouts').hidden = !features.rollouts;
  state.rolloutControl = features.rolloutControl === true;
  $('#rollout-form').hidden = !(state.rolloutControl && me.role === 'admin');
  $('#rollouts-actions').hidden = !state.rolloutControl;
  if (state.rolloutControl)
    $('#rollouts-source').textContent =
      'Live from the rollout controller (connector ota controller). A paused rollout sends no new job; jobs already sent finish.';
  $('#segment-form').hidden = me.role !== 'admin';
  show('fleet');
  await loadTenants();
  listen();
}

$('#login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('#login-error').textContent = '';
  try {
    const me = await api('/api/login', {
      method: 'POST',
      body: JSON.stringify({ name: $('#login-name').value, password: $('#login-password').value }),
    });
    $('#login-password').value = '';
    await enter(me);
  } catch (err) {
    $('#login-error').textContent = err.message;
  }
});

$('#login-cert').addEventListener('click', async () => {
  $('#login-error').textContent = '';
  try {
    await enter(await api('/api/login-cert', { method: 'POST', body: '{}' }));
  } catch (err) {
    $('#login-error').textContent = err.message;
  }
});

$('#claim-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const serial = $('#claim-serial').value.trim();
  const body = { tenant: $('#claim-tenant').value, segment: $('#claim-segment').value.trim(), site: $('#claim-site').value.trim() };
  try {
    await api(`/api/units/${encodeURIComponent(serial)}/claim`, { method: 'POST', body: JSON.stringify(body) });
    $('#claim-result').textContent = `claimed ${serial} for ${body.tenant}`;
  } catch (err) {
    $('#claim-result').textContent = `not claimed: ${err.message}`;
  }
});

async function tenantChange(path, body, done) {
  try {
    const { tenants } = await api(path, { method: 'POST', body: JSON.stringify(body) });
    $('#tenant-result').textContent = done;
    state.tenants = tenants;
    await loadTenants();
  } catch (err) {
    $('#tenant-result').textContent = `not saved: ${err.message}`;
  }
}

$('#tenant-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('#tenant-name').value.trim();
  tenantChange('/api/tenants', { name }, `tenant ${name} added`);
});

$('#segment-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const tenant = $('#segment-tenant').value;
  const name = $('#segment-name').value.trim();
  const body = {
    name,
    vni: Number($('#segment-vni').value),
    vteps: $('#segment-vteps')
      .value.split(',')
      .map((v) => v.trim())
      .filter(Boolean),
    vtepPathMtu: Number($('#segment-mtu').value),
    multiSite: $('#segment-multisite').checked,
    allowDhcpFromDc: $('#segment-dhcp').checked,
    replace: $('#segment-replace').checked,
  };
  tenantChange(`/api/tenants/${encodeURIComponent(tenant)}/segments`, body, `segment ${tenant}/${name} saved`);
});

$('#rollout-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const r = await api('/api/rollouts', {
      method: 'POST',
      body: JSON.stringify({
        release: $('#rollout-release').value,
        cohort: $('#rollout-cohort').value,
        failThreshold: Number($('#rollout-threshold').value),
        maxParallel: Number($('#rollout-parallel').value),
      }),
    });
    $('#rollout-result').textContent = `rollout ${r.rolloutId} started`;
  } catch (err) {
    $('#rollout-result').textContent = `not started: ${err.message}`;
  }
  await loadRollouts().catch(() => {});
});

$('#drill-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const kind = $('#drill-kind').value;
  const vmIp = $('#drill-vm').value.trim();
  const body = {
    tenant: $('#drill-tenant').value,
    kind,
    ttlS: Number($('#drill-ttl').value) * 60,
    ...(vmIp ? { vmIp } : {}),
    ...(kind === 'sandbox' ? { allowOutbound: $('#drill-outbound').checked } : {}),
  };
  try {
    const d = await api('/api/drills', { method: 'POST', body: JSON.stringify(body) });
    $('#drill-result').textContent = `drill ${d.id} started for ${d.tenant}`;
  } catch (err) {
    $('#drill-result').textContent = `not started: ${err.message}`;
  }
  await loadDrills().catch(() => {});
});

$('#audit-verify').addEventListener('click', async () => {
  const out = $('#audit-verdict');
  out.textContent = 'verifying…';
  try {
    const v = await api('/api/audit/verify');
    out.dataset.ok = String(v.ok);
    out.textContent = v.ok
      ? `Chain intact: ${v.lines} records in ${v.files} file(s), ${v.checkpoints} signed checkpoints, ${v.unsignedTail} records after the last one; head pointer ${v.headChecked ? 'checked' : 'absent'}.`
      : `Chain NOT intact at line ${v.line}: ${v.problem}`;
  } catch (err) {
    out.dataset.ok = 'error';
    out.textContent = `not verified: ${err.message}`;
  }
});

$('#audit-form').addEventListener('submit', (e) => {
  e.preventDefault();
  loadAudit().catch((err) => alert(err.message));
});

for (const b of document.querySelectorAll('nav [data-view]')) b.addEventListener('click', () => show(b.dataset.view));
$('#unit-back').addEventListener('click', () => show('fleet'));

$('#logout').addEventListener('click', async () => {
  await api('/api/logout', { method: 'POST', body: '{}' }).catch(() => {});
  location.reload();
});

// A page reload keeps the session: ask who we are.
api('/api/me').then(enter, () => {});
