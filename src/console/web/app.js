// SPDX-License-Identifier: UNLICENSED
// The console page: plain browser JavaScript, no framework and no build step, served by the console
// itself (no CDN: datacentres can be air-gapped). It only talks to the JSON API under /api; live
// updates come as server-sent events. Text is set with textContent, never as HTML.
'use strict';

const state = { me: null, csrf: '', units: [], tenants: [], events: null };
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
    cell(tr, u.serial);
    cell(tr, u.state === 'allowed' ? 'waiting for claim' : u.state);
    cell(tr, u.tenant);
    cell(tr, u.segment);
    cell(tr, u.site);
    cell(tr, u.online ? 'up' : 'down', u.online ? 'up' : 'down').dataset.tunnel = u.online ? 'up' : 'down';
    cell(tr, u.agentVersion);
    cell(tr, since(u.sinceMs));
    const actions = cell(tr, '');
    const canChange = state.me.role === 'admin' || (state.me.role === 'msp' && state.me.tenants.includes(u.tenant));
    if (u.state === 'allowed' && state.me.role !== 'read-only') {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Claim…';
      b.setAttribute('aria-label', `Claim ${u.serial}`);
      b.addEventListener('click', () => {
        $('#claim-serial').value = u.serial;
        $('#claim-tenant').focus();
      });
      actions.appendChild(b);
    } else if (u.state === 'claimed' && canChange) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Revoke';
      b.setAttribute('aria-label', `Revoke ${u.serial}`);
      b.addEventListener('click', async () => {
        if (!confirm(`Revoke ${u.serial}? Its tunnel is closed and its certificate will not be renewed.`)) return;
        await api(`/api/units/${encodeURIComponent(u.serial)}/revoke`, { method: 'POST', body: '{}' }).catch((e) => alert(e.message));
      });
      actions.appendChild(b);
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
  }
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

function show(view) {
  for (const v of ['fleet', 'tenants', 'audit']) $(`#${v}-view`).hidden = v !== view;
  for (const b of document.querySelectorAll('nav [data-view]')) {
    if (b.dataset.view === view) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  if (view === 'tenants') loadTenants().catch(() => {});
  if (view === 'audit') loadAudit().catch(() => {});
}

function listen() {
  state.events?.close();
  state.events = new EventSource('/api/events');
  state.events.addEventListener('units', (e) => {
    const d = JSON.parse(e.data);
    state.units = d.units;
    renderFleet();
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

$('#audit-form').addEventListener('submit', (e) => {
  e.preventDefault();
  loadAudit().catch((err) => alert(err.message));
});

for (const b of document.querySelectorAll('nav [data-view]')) b.addEventListener('click', () => show(b.dataset.view));

$('#logout').addEventListener('click', async () => {
  await api('/api/logout', { method: 'POST', body: '{}' }).catch(() => {});
  location.reload();
});

// A page reload keeps the session: ask who we are.
api('/api/me').then(enter, () => {});
