// SPDX-License-Identifier: UNLICENSED
// The console page: plain browser JavaScript, no framework and no build step, served by the console
// itself (no CDN: datacentres can be air-gapped). It only talks to the JSON API under /api; live
// updates come as server-sent events. Text is set with textContent, never as HTML. ES modules, one per
// page and one of shared pieces; this one wires the fleet, tenants, audit, login and navigation.
import { $, api, button, cell, mayChange, since, state } from './common.js';
import { loadUnit, rateNow, renderUnit, sample } from './unit-page.js';
import { loadReleases, loadRollouts } from './rollouts-page.js';
import { loadDrills } from './drills-page.js';

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

function openUnit(serial) {
  state.unit = serial;
  state.detail = null;
  show('unit');
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
    await api(path, { method: 'POST', body: JSON.stringify(body) });
  } catch (err) {
    $('#tenant-result').textContent = `not saved: ${err.message}`;
    return;
  }
  // Said once the page shows the change: a tenant just added is already in the segment form's list.
  await loadTenants().catch(() => undefined);
  $('#tenant-result').textContent = done;
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
