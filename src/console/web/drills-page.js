// SPDX-License-Identifier: UNLICENSED
// The Drills page: drills (start, end, timeline, report) and the failovers beside them.
import { $, SVG, api, button, cell, fillSelect, mayChange, state } from './common.js';

/** One drill's timeline: its events on a line from its start to its end (or now), and as a table. */
export async function loadDrill(id, kind = 'drills') {
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
export function reportLink(kind, id) {
  const a = document.createElement('a');
  a.href = `/api/${kind}/${encodeURIComponent(id)}/report`;
  a.target = '_blank';
  a.rel = 'noopener';
  a.textContent = ' report';
  a.setAttribute('aria-label', `Report of ${kind === 'drills' ? 'drill' : 'failover'} ${id}`);
  return a;
}

export async function loadFailovers() {
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

export async function loadDrills() {
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
