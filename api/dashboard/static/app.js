'use strict';
/* FlockID lender dashboard. Plain JS, no framework, no network beyond this API.

   The API key the user types is kept in sessionStorage (gone when the tab closes) and sent as a
   Bearer token on every call; the API decides what this key may see, so a lender opening another
   lender's farm gets the API's 404 and this page says so. */
(function () {
  const KEY = 'flockid.apiKey';
  const main = document.getElementById('main');
  const page = document.body.dataset.page;

  // ---- small helpers ------------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const num = (v, digits = 0) => (v === null || v === undefined || !isFinite(v)) ? '–'
    : Number(v).toLocaleString('en-US', {maximumFractionDigits: digits, minimumFractionDigits: digits});
  const money = (v, cur) => (v === null || v === undefined) ? '–' : `${num(v, 0)} ${cur || ''}`.trim();
  const pct = (v) => (v === null || v === undefined || !isFinite(v)) ? '–' : `${(100 * v).toFixed(1)}%`;
  const when = (s) => s ? new Date(s).toISOString().replace('T', ' ').slice(0, 16) + ' UTC' : '–';
  const badge = (text, cls) => h('span', {class: `badge ${cls || ''}`}, text);
  const statusClass = {ok: 'ok', watch: 'warning', breach: 'critical', no_data: ''};
  const healthClass = {ok: 'ok', lethargic: 'warning', suspected_sick: 'warning', suspected_dead: 'critical'};

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }

  function apiKey() { return sessionStorage.getItem(KEY); }

  async function api(path, {raw = false} = {}) {
    const res = await fetch(path, {headers: {Authorization: `Bearer ${apiKey()}`, Accept: 'application/json'}});
    if (res.status === 401) {
      sessionStorage.removeItem(KEY);
      throw new ApiError(401, await res.json().catch(() => null));
    }
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
    return raw ? res : res.json();
  }

  async function all(path, max = 2000) {
    const items = [];
    let cursor = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const url = `${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const pageData = await api(url);
      items.push(...pageData.items);
      cursor = pageData.next_cursor;
    } while (cursor && items.length < max);
    return items;
  }

  function showError(err) {
    const text = err instanceof ApiError && err.status === 404
      ? 'Not found, or not in your portfolio.'
      : err.message || String(err);
    main.replaceChildren(h('div', {class: 'error', id: 'error', 'data-status': err.status || ''}, text),
      h('p', {}, h('a', {href: '/dashboard'}, '← back to the portfolio')));
  }

  // ---- login --------------------------------------------------------------------------------------
  function loginForm(message) {
    const input = h('input', {id: 'api-key', type: 'password', autocomplete: 'off', placeholder: 'fk_…',
      required: true});
    const form = h('form', {class: 'login panel', id: 'login', onsubmit: async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      try {
        await api('/v1/farms?limit=1');
        route();
      } catch (err) {
        sessionStorage.removeItem(KEY);
        loginForm(err.status === 401 ? 'That API key was not accepted.' : err.message);
      }
    }},
    h('h1', {}, 'Lender dashboard'),
    h('label', {for: 'api-key'}, 'API key'), input,
    message ? h('p', {class: 'error', id: 'login-error'}, message) : null,
    h('button', {type: 'submit', id: 'login-submit'}, 'Log in'),
    h('p', {class: 'muted'}, 'The key stays in this browser tab only (sessionStorage).'));
    main.replaceChildren(form);
    input.focus();
  }

  function header() {
    const who = document.getElementById('who');
    const out = document.getElementById('logout');
    const key = apiKey();
    who.textContent = key ? `key ${key.split('_').slice(0, 2).join('_')}…` : '';
    out.hidden = !key;
    out.onclick = () => { sessionStorage.removeItem(KEY); window.location.href = '/dashboard'; };
  }

  // ---- portfolio ----------------------------------------------------------------------------------
  async function portfolio() {
    let rows;
    try {
      rows = await all('/v1/portfolio');
    } catch (err) {
      if (err.status === 403) {
        // Farm keys have no loans: show their farms instead.
        const farms = await all('/v1/farms');
        main.replaceChildren(h('h1', {}, 'Farms'), farmList(farms));
        return;
      }
      throw err;
    }
    const byCur = {};
    for (const r of rows) {
      const c = r.loan.currency;
      byCur[c] = byCur[c] || {outstanding: 0, value: 0};
      byCur[c].outstanding += r.loan.outstanding;
      byCur[c].value += r.value || 0;
    }
    const kpis = h('div', {class: 'kpis'},
      kpi('Loans', rows.length, `${rows.filter((r) => r.loan.status === 'active').length} active`),
      ...Object.entries(byCur).map(([c, v]) => kpi(`Outstanding ${c}`, num(v.outstanding), `collateral ${num(v.value)}`)),
      kpi('In breach', rows.filter((r) => r.status === 'breach').length, 'LTV above limit'),
      kpi('Open alerts', rows.reduce((a, r) => a + r.open_alerts, 0), ''));
    const table = h('table', {id: 'portfolio'},
      h('thead', {}, h('tr', {}, ['Loan', 'Farm', 'Headcount', 'Collateral value', 'Outstanding', 'LTV',
        'Limit', 'Alerts', 'Status'].map((t, i) => h('th', {class: i >= 2 && i <= 7 ? 'num' : ''}, t)))),
      h('tbody', {}, rows.map((r) => h('tr', {'data-loan': r.loan.id, 'data-farm': r.farm_id},
        h('td', {}, r.loan.reference || r.loan.id),
        h('td', {}, h('a', {href: `/dashboard/farm/${encodeURIComponent(r.farm_id)}`, class: 'farm-link'},
          r.farm_name || r.farm_id)),
        h('td', {class: 'num'}, num(r.headcount), r.headcount_stale ? [' ', badge('stale', 'warning')] : null),
        h('td', {class: 'num'}, money(r.value, r.loan.currency)),
        h('td', {class: 'num'}, money(r.loan.outstanding, r.loan.currency)),
        h('td', {class: 'num'}, pct(r.ltv)),
        h('td', {class: 'num'}, pct(r.loan.ltv_limit)),
        h('td', {class: 'num'}, r.open_alerts),
        h('td', {}, badge(r.status.replace('_', ' '), statusClass[r.status]))))));
    main.replaceChildren(h('h1', {}, 'Portfolio'), kpis,
      rows.length ? table : h('p', {class: 'muted'}, 'No loans yet.'));
  }

  function farmList(farms) {
    return h('table', {id: 'farms'}, h('thead', {}, h('tr', {}, h('th', {}, 'Farm'), h('th', {}, 'Location'))),
      h('tbody', {}, farms.map((f) => h('tr', {},
        h('td', {}, h('a', {href: `/dashboard/farm/${encodeURIComponent(f.id)}`, class: 'farm-link'}, f.name)),
        h('td', {}, f.location || '')))));
  }

  function kpi(label, value, sub, id) {
    return h('div', {class: 'kpi', id}, h('div', {class: 'label'}, label), h('div', {class: 'value'}, value),
      sub ? h('div', {class: 'sub'}, sub) : null);
  }

  // ---- farm ---------------------------------------------------------------------------------------
  function chartRange(placedAt, asOf) {
    // Hourly buckets over the last week of data: the API's mortality is summed per bucket, so one
    // report per bucket keeps it a count of suspected-dead birds rather than bird-reports.
    const end = new Date((asOf ? new Date(asOf).getTime() : Date.now()) + 3600e3);
    let start = new Date(end.getTime() - 7 * 86400e3);
    if (placedAt && new Date(placedAt) > start) start = new Date(placedAt);
    if (start >= end) start = new Date(end.getTime() - 86400e3);
    return {from: start.toISOString(), to: end.toISOString(), bucket: 'hour'};
  }

  async function farmPage() {
    const farmId = decodeURIComponent(window.location.pathname.split('/').filter(Boolean).pop());
    const farm = await api(`/v1/farms/${encodeURIComponent(farmId)}`);
    document.title = `FlockID — ${farm.name}`;
    const flocks = await all(`/v1/flocks?farm_id=${encodeURIComponent(farm.id)}`);
    const flock = flocks.filter((f) => !f.closed_at).pop() || flocks[flocks.length - 1] || null;
    let loanRows = [];
    try {
      loanRows = (await all('/v1/portfolio')).filter((r) => r.farm_id === farm.id);
    } catch (err) {
      if (err.status !== 403) throw err;  // farm keys see no loans
    }

    const head = flock ? await api(`/v1/flocks/${flock.id}/headcount`) : null;
    const valuations = await Promise.all(loanRows.map((r) => api(`/v1/loans/${r.loan.id}/valuation`)));
    const range = chartRange(flock && flock.placed_at, head && head.as_of);
    const q = `from=${encodeURIComponent(range.from)}&to=${encodeURIComponent(range.to)}&bucket=${range.bucket}`;
    const [series, alerts, cameras, birds, histories] = await Promise.all([
      flock ? api(`/v1/flocks/${flock.id}/timeseries?${q}`) : api(`/v1/farms/${farm.id}/timeseries?${q}`),
      all(`/v1/alerts?farm_id=${encodeURIComponent(farm.id)}&status=open`, 500),
      api(`/v1/farms/${encodeURIComponent(farm.id)}/cameras`),
      flock ? all(`/v1/flocks/${flock.id}/birds`, 5000) : Promise.resolve([]),
      Promise.all(loanRows.map((r) => api(`/v1/loans/${r.loan.id}/valuation/history?${q}`))),
    ]);

    const v = valuations[0];
    const deadNow = birds.filter((b) => b.health === 'suspected_dead').length;
    // A report's suspected-dead count is a lower bound on deaths; the bird list shows the latest flags.
    const peakDead = series.points.reduce((m, p) => Math.max(m, p.mortality || 0), 0);
    const dead = Math.max(deadNow, peakDead);
    const sick = birds.filter((b) => b.health === 'suspected_sick' || b.health === 'lethargic').length;
    const kpis = h('div', {class: 'kpis'},
      kpi('Headcount', head && head.value !== null ? num(head.value) : '–',
        head && head.value !== null ? `band ${num(head.low)}–${num(head.high)}${head.stale ? ' · STALE since ' + when(head.stale_since) : ''}` : 'no reports yet',
        'kpi-headcount'),
      kpi('Mortality', num(dead), `suspected dead (${deadNow} flagged now) · ${sick} sick or lethargic`,
        'kpi-mortality'),
      kpi('Average weight', head && head.mean_weight_g ? `${num(head.mean_weight_g / 1000, 2)} kg` : '–',
        'size-based estimate', 'kpi-weight'),
      v ? kpi('Collateral value', money(v.value, v.currency),
        v.value_low !== null ? `band ${num(v.value_low)}–${num(v.value_high)}` : '', 'kpi-value') : null,
      v ? kpi('LTV', pct(v.ltv), `limit ${pct(v.ltv_limit)}${v.above_limit ? ' · ABOVE LIMIT' : ''}`, 'kpi-ltv') : null,
      kpi('Open alerts', alerts.length, '', 'kpi-alerts'));

    const charts = h('div', {class: 'grid', id: 'charts'});
    const chartBox = (id) => { const d = h('div', {class: 'panel', id}); charts.appendChild(d); return d; };
    const pts = series.points.map((p) => ({...p, t: new Date(p.t)}));
    FlockCharts.line(chartBox('chart-headcount'), {title: 'Headcount', unit: 'birds', series: [{
      name: 'headcount', points: pts.map((p) => ({t: p.t, y: p.headcount, lo: p.headcount_low,
        hi: p.headcount_high, stale: p.stale}))}]});
    FlockCharts.line(chartBox('chart-mortality'), {title: 'Mortality: suspected dead birds', unit: 'birds',
      series: [{name: 'suspected dead', color: '#b83232', points: pts.map((p) => ({t: p.t, y: p.mortality}))}]});
    FlockCharts.line(chartBox('chart-weight'), {title: 'Average weight', unit: 'g', yZero: false, series: [
      {name: 'measured', points: pts.map((p) => ({t: p.t, y: p.mean_weight_g}))},
      {name: 'growth curve', color: '#9aa39d', points: pts.map((p) => ({t: p.t, y: p.expected_weight_g}))}]});
    histories.forEach((hist, i) => {
      const cur = loanRows[i].loan.currency;
      const vp = hist.points.map((p) => ({...p, t: new Date(p.t)}));
      FlockCharts.line(chartBox(`chart-valuation-${i}`), {
        title: `Collateral value · ${loanRows[i].loan.reference || loanRows[i].loan.id}`, unit: cur,
        series: [{name: 'value', points: vp.map((p) => ({t: p.t, y: p.value, stale: p.stale}))},
          {name: 'outstanding', color: '#b83232',
            points: vp.map((p) => ({t: p.t, y: loanRows[i].loan.outstanding}))}]});
      FlockCharts.line(chartBox(`chart-ltv-${i}`), {title: 'Loan to value', unit: '%', series: [
        {name: 'LTV', color: '#8a4fa5', points: vp.map((p) => ({t: p.t, y: p.ltv === null ? null : 100 * p.ltv}))},
        {name: 'limit', color: '#b83232', points: vp.map((p) => ({t: p.t, y: 100 * loanRows[i].loan.ltv_limit}))}]});
    });

    const alertTable = alerts.length ? h('table', {id: 'alerts'},
      h('thead', {}, h('tr', {}, ['When', 'Kind', 'Severity', 'Message', 'Reports'].map((t) => h('th', {}, t)))),
      h('tbody', {}, alerts.map((a) => h('tr', {'data-kind': a.kind},
        h('td', {}, when(a.created_at)), h('td', {}, a.kind.replace(/_/g, ' ')),
        h('td', {}, badge(a.severity, a.severity)), h('td', {}, a.message),
        h('td', {}, a.report_ids.slice(0, 5).join(', ')))))) : h('p', {class: 'muted', id: 'alerts'}, 'No open alerts.');

    const snaps = h('div', {class: 'snapshots', id: 'snapshots'});
    if (!cameras.length) snaps.appendChild(h('p', {class: 'muted'}, 'No camera snapshots yet.'));
    for (const cam of cameras) {
      const img = h('img', {alt: `camera ${cam.camera_id}`, 'data-camera': cam.camera_id});
      snaps.appendChild(h('figure', {}, img, h('figcaption', {}, `${cam.camera_id} · ${when(cam.snapshot_at)} · report ${cam.report_id}`)));
      // <img src> cannot send the Bearer header: fetch the JPEG and show it as a blob URL.
      api(cam.snapshot_url, {raw: true}).then((r) => r.blob()).then((b) => { img.src = URL.createObjectURL(b); })
        .catch(() => { img.alt = `camera ${cam.camera_id}: snapshot unavailable`; });
    }

    const birdTable = h('table', {id: 'birds'},
      h('thead', {}, h('tr', {}, ['Digital ID', 'Health', 'Weight (g)', 'Activity (BL/h)', 'ID confidence',
        'Cameras', 'First seen', 'Last seen', 'Live'].map((t, i) => h('th', {class: i >= 2 && i <= 4 ? 'num' : ''}, t)))),
      h('tbody', {}, birds.map((b) => h('tr', {'data-bird': b.bird_id, 'data-health': b.health},
        h('td', {}, h('code', {}, b.bird_id)),
        h('td', {}, badge(b.health.replace('suspected_', ''), healthClass[b.health])),
        h('td', {class: 'num'}, b.weight_g === null ? '–' : `${num(b.weight_g)}${b.weight_g_low !== null ? ` (${num(b.weight_g_low)}–${num(b.weight_g_high)})` : ''}`),
        h('td', {class: 'num'}, num(b.activity_bl_per_h, 1)),
        h('td', {class: 'num'}, pct(b.identity_confidence)),
        h('td', {}, (b.cameras || []).join(', ')),
        h('td', {}, when(b.first_seen)), h('td', {}, when(b.last_seen)),
        h('td', {}, b.live ? 'yes' : 'no')))));

    const loansTable = loanRows.length ? h('table', {id: 'farm-loans'},
      h('thead', {}, h('tr', {}, ['Loan', 'Outstanding', 'Value', 'LTV', 'Status'].map((t) => h('th', {}, t)))),
      h('tbody', {}, loanRows.map((r) => h('tr', {}, h('td', {}, r.loan.reference || r.loan.id),
        h('td', {}, money(r.loan.outstanding, r.loan.currency)), h('td', {}, money(r.value, r.loan.currency)),
        h('td', {}, pct(r.ltv)), h('td', {}, badge(r.status.replace('_', ' '), statusClass[r.status])))))) : null;

    main.replaceChildren(...[
      h('p', {}, h('a', {href: '/dashboard'}, '← portfolio')),
      h('h1', {id: 'farm-name'}, farm.name, ' ', h('span', {class: 'muted'}, farm.location ? `· ${farm.location}` : '')),
      h('p', {class: 'muted'}, `${flock ? `Flock ${flock.name} (${flock.breed || 'breed n/a'}), placed ${when(flock.placed_at)}` : 'No flock'}` +
        ` · price ${farm.price_per_kg !== null ? `${farm.price_per_kg} ${farm.currency}/kg` : farm.price_source}` +
        (head && head.as_of ? ` · last report ${when(head.as_of)}` : '')),
      kpis,
      v && v.warnings && v.warnings.length ? h('div', {class: 'error'}, v.warnings.join(' · ')) : null,
      loansTable ? h('h2', {}, 'Loans') : null, loansTable,
      h('h2', {}, 'Over time'), charts,
      h('h2', {}, `Current alerts (${alerts.length})`), alertTable,
      h('h2', {}, 'Latest annotated snapshot per camera'), snaps,
      h('h2', {}, `Birds (${birds.length})`), h('div', {class: 'scroll'}, birdTable),
    ].filter(Boolean));
  }

  // ---- router -------------------------------------------------------------------------------------
  async function route() {
    header();
    if (!apiKey()) { loginForm(); return; }
    main.replaceChildren(h('p', {class: 'muted'}, 'Loading…'));
    try {
      if (page === 'farm') await farmPage();
      else await portfolio();
      document.body.dataset.ready = '1';
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) { header(); loginForm('Your key was not accepted; log in again.'); return; }
      showError(err);
      document.body.dataset.ready = '1';
    }
  }

  route();
})();
