'use strict';
/* Tiny SVG line charts, hand-written so the dashboard needs nothing from the internet.

   FlockCharts.line(container, {title, unit, series: [{name, color, points: [{t: Date, y: number|null,
   lo?: number, hi?: number, stale?: bool}]}], yZero?: bool})
   draws one chart: a line per series (gaps where y is null), an optional low/high band for the
   first series, and orange markers on stale points (cameras could not see the flock). */
(function () {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 640, H = 260, M = {l: 62, r: 34, t: 30, b: 34};

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceStep(span, ticks) {
    const raw = span / Math.max(1, ticks);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    const step = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
    return step * mag;
  }

  function fmtNum(v) {
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(0) + 'k';
    if (a >= 100 || Number.isInteger(v)) return v.toFixed(0);
    return String(parseFloat(v.toPrecision(3)));
  }

  function fmtTime(t, spanMs) {
    const d = new Date(t);
    const pad = (n) => String(n).padStart(2, '0');
    const day = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    if (spanMs > 3 * 86400e3) return day.slice(5);
    if (spanMs > 86400e3) return `${day.slice(5)} ${pad(d.getUTCHours())}h`;
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  }

  function line(container, opts) {
    const series = (opts.series || []).map((s) => ({
      ...s, points: (s.points || []).filter((p) => p && p.t instanceof Date && !isNaN(p.t)),
    }));
    const all = series.flatMap((s) => s.points);
    const ys = [];
    for (const p of all) {
      for (const v of [p.y, p.lo, p.hi]) if (typeof v === 'number' && isFinite(v)) ys.push(v);
    }
    const svg = el('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
      'aria-label': opts.title || 'chart', 'data-points': String(all.filter((p) => p.y != null).length)});
    svg.appendChild(el('text', {x: M.l, y: 18, class: 'title'}, opts.title + (opts.unit ? ` (${opts.unit})` : '')));
    container.replaceChildren(svg);
    if (!ys.length) {
      svg.appendChild(el('text', {x: W / 2, y: H / 2, 'text-anchor': 'middle'}, 'no data yet'));
      return svg;
    }
    const ts = all.map((p) => p.t.getTime());
    let t0 = Math.min(...ts), t1 = Math.max(...ts);
    if (t1 === t0) { t0 -= 1800e3; t1 += 1800e3; }
    let y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (opts.yZero !== false) y0 = Math.min(0, y0);
    if (y1 === y0) { y1 = y0 + 1; }
    const step = niceStep(y1 - y0, 5);
    y0 = Math.floor(y0 / step) * step;
    y1 = Math.ceil(y1 / step) * step;
    const X = (t) => M.l + (t - t0) / (t1 - t0) * (W - M.l - M.r);
    const Y = (v) => H - M.b - (v - y0) / (y1 - y0) * (H - M.t - M.b);

    for (let v = y0; v <= y1 + step / 2; v += step) {
      svg.appendChild(el('line', {x1: M.l, x2: W - M.r, y1: Y(v), y2: Y(v), class: 'gridline'}));
      svg.appendChild(el('text', {x: M.l - 6, y: Y(v) + 4, 'text-anchor': 'end'}, fmtNum(v)));
    }
    const nx = 6;
    for (let i = 0; i <= nx; i++) {
      const t = t0 + (t1 - t0) * i / nx;
      svg.appendChild(el('text', {x: X(t), y: H - M.b + 16, 'text-anchor': 'middle'}, fmtTime(t, t1 - t0)));
    }
    svg.appendChild(el('line', {x1: M.l, x2: M.l, y1: M.t, y2: H - M.b, class: 'axis'}));
    svg.appendChild(el('line', {x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: 'axis'}));

    const first = series[0];
    if (first) {
      const band = first.points.filter((p) => typeof p.lo === 'number' && typeof p.hi === 'number');
      if (band.length > 1) {
        const top = band.map((p) => `${X(p.t.getTime())},${Y(p.hi)}`);
        const bottom = band.slice().reverse().map((p) => `${X(p.t.getTime())},${Y(p.lo)}`);
        svg.appendChild(el('polygon', {points: top.concat(bottom).join(' '), class: 'band'}));
      }
    }
    series.forEach((s, i) => {
      const color = s.color || ['#2f6f4f', '#4a6fa5', '#b7791f', '#8a4fa5'][i % 4];
      let d = '', pen = false;
      for (const p of s.points) {
        if (typeof p.y !== 'number' || !isFinite(p.y)) { pen = false; continue; }
        d += `${pen ? 'L' : 'M'}${X(p.t.getTime()).toFixed(1)},${Y(p.y).toFixed(1)}`;
        pen = true;
      }
      if (d) svg.appendChild(el('path', {d, class: 'series', stroke: color, 'data-series': s.name}));
      for (const p of s.points) {
        if (typeof p.y !== 'number' || !isFinite(p.y)) continue;
        const dot = el('circle', {cx: X(p.t.getTime()), cy: Y(p.y), r: p.stale ? 4 : 2.5,
          class: p.stale ? 'dot stale' : 'dot', fill: p.stale ? undefined : color});
        dot.appendChild(el('title', {}, `${s.name}: ${fmtNum(p.y)}${p.stale ? ' (stale)' : ''} at ${p.t.toISOString()}`));
        svg.appendChild(dot);
      }
    });
    if (series.length > 1 || all.some((p) => p.stale)) {
      let x = W - M.r;
      const items = series.map((s, i) => [s.name, s.color || ['#2f6f4f', '#4a6fa5', '#b7791f', '#8a4fa5'][i % 4]]);
      if (all.some((p) => p.stale)) items.push(['stale', '#b7791f']);
      for (const [name, color] of items.reverse()) {
        const w = 14 + 7 * name.length;
        x -= w;
        svg.appendChild(el('rect', {x, y: 9, width: 10, height: 10, fill: color}));
        svg.appendChild(el('text', {x: x + 13, y: 18}, name));
      }
    }
    return svg;
  }

  window.FlockCharts = {line};
})();
