/*
 * Tandem dashboard: renders a `Dashboard` (crates/tandem-report/src/lib.rs) as KPI cards, SVG charts and
 * tables. Plain JavaScript with no dependencies and no build step; nothing is fetched from anywhere but
 * the server that sent the page, so it runs under `Content-Security-Policy: default-src 'self'`.
 *
 * Two modes:
 * - served by `tandem serve` at /ui: reads GET /ui/api/dashboard?since=30d (the session cookie
 *   authenticates; a 401 sends the browser back to the login page) and, for one ledger entry,
 *   GET /ui/api/entry/<index> (shown in the #entry panel when the hash is #entry/<index>);
 * - standalone (`tandem report --format html`): the Dashboard JSON is embedded in
 *   <script type="application/json" id="tandem-data"> and nothing is requested.
 *
 * Missing or null figures show as "—". Charts are small hand-written SVG helpers (bars, stacked bars,
 * a line on a second axis); each bar has a <title> tooltip.
 */
(function () {
  'use strict';

  // Series colours; tests/clients/test_dashboard.py reads this block to look for them in the screenshot.
  const PALETTE = {
    live: '#2563eb',
    deep: '#ea580c',
    none: '#94a3b8',
    merged: '#0d9488',
    lead: '#7c3aed',
    rework: '#db2777',
  };
  // Colours of tiers other than live, deep and none, in order of appearance.
  const MORE_TIER_COLORS = ['#16a34a', '#ca8a04', '#0891b2', '#9333ea', '#be123c'];
  const TIER_ORDER = ['live', 'deep'];
  const CLASS_ORDER = ['rename', 'fix', 'test', 'refactor', 'migration', 'docs', 'config', 'other'];
  const REFRESH_MS = 60000;
  const DASH = '—';
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  const state = { live: true, since: '30d', timer: null, entryRequest: 0 };

  // ---- DOM helpers -------------------------------------------------------------------------------

  const $ = (selector, root) => (root || document).querySelector(selector);

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** An HTML element: h('td', {class: 'x'}, 'text', child). */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    return append(node, children);
  }

  /** An SVG element. */
  function s(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    return append(node, children);
  }

  function fill(container, ...children) {
    container.replaceChildren();
    return append(container, children);
  }

  function swatch(color, line) {
    const node = h('span', { class: line ? 'swatch line' : 'swatch' });
    node.style.background = color;
    return node;
  }

  // ---- Formatting --------------------------------------------------------------------------------

  const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
  const sum = (xs) => xs.reduce((a, x) => a + (isNum(x) ? x : 0), 0);

  function fmtInt(x) {
    return isNum(x) ? Math.round(x).toLocaleString('en-US') : DASH;
  }

  function fmtNum(x, digits) {
    if (!isNum(x)) return DASH;
    if (Math.abs(x) >= 100 || Number.isInteger(x)) return fmtInt(x);
    return x.toFixed(digits === undefined ? 1 : digits);
  }

  function fmtCompact(x) {
    if (!isNum(x)) return DASH;
    const a = Math.abs(x);
    if (a >= 1e9) return (x / 1e9).toFixed(1) + 'B';
    if (a >= 1e6) return (x / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
    if (a >= 1e4) return (x / 1e3).toFixed(0) + 'k';
    if (a >= 1e3) return (x / 1e3).toFixed(1) + 'k';
    return fmtNum(x);
  }

  /** Hours as "42 min", "3.2 h" or "2.1 d". */
  function fmtHours(hours) {
    if (!isNum(hours)) return DASH;
    if (hours < 1) return Math.round(hours * 60) + ' min';
    if (hours < 48) return hours.toFixed(1) + ' h';
    return (hours / 24).toFixed(1) + ' d';
  }

  function fmtPct(share, digits) {
    return isNum(share) ? (share * 100).toFixed(digits === undefined ? 1 : digits) + '%' : DASH;
  }

  function fmtUsd(x) {
    if (!isNum(x)) return DASH;
    const a = Math.abs(x);
    if (a >= 1000) return '$' + Math.round(x).toLocaleString('en-US');
    if (a > 0 && a < 0.01) return '$' + x.toPrecision(2);
    return '$' + x.toFixed(2);
  }

  function fmtMs(ms) {
    if (!isNum(ms)) return DASH;
    return ms < 1000 ? Math.round(ms) + ' ms' : (ms / 1000).toFixed(2) + ' s';
  }

  function fmtUnit(x, unit) {
    if (unit === 'usd') return fmtUsd(x);
    if (unit === 'tokens') return fmtCompact(x);
    return fmtInt(x);
  }

  const pad = (n) => String(n).padStart(2, '0');

  /** "Nov 2" (UTC). */
  function fmtDay(ms) {
    const d = new Date(ms);
    return MONTHS[d.getUTCMonth()] + ' ' + d.getUTCDate();
  }

  /** "Nov 2, 2025" (UTC). */
  function fmtDate(ms) {
    return isNum(ms) ? fmtDay(ms) + ', ' + new Date(ms).getUTCFullYear() : DASH;
  }

  /** "2025-11-02 14:03" (UTC). */
  function fmtTime(ms) {
    if (!isNum(ms)) return DASH;
    const d = new Date(ms);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  }

  function fmtAgo(ms) {
    if (!isNum(ms)) return '';
    const secs = Math.max(0, (Date.now() - ms) / 1000);
    if (secs < 60) return 'just now';
    if (secs < 3600) return Math.round(secs / 60) + ' min ago';
    if (secs < 172800) return Math.round(secs / 3600) + ' h ago';
    return Math.round(secs / 86400) + ' d ago';
  }

  const short = (hash, n) => (hash ? String(hash).slice(0, n || 8) : DASH);

  // ---- Tiers -------------------------------------------------------------------------------------

  /** Tier names in display order: live, deep, the others alphabetically, none last. */
  function orderTiers(names) {
    const rank = (t) => (TIER_ORDER.includes(t) ? TIER_ORDER.indexOf(t) : t === 'none' ? 99 : 50);
    return [...new Set(names)].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  }

  const extraTiers = [];
  function tierColor(tier) {
    if (PALETTE[tier] && (TIER_ORDER.includes(tier) || tier === 'none')) return PALETTE[tier];
    if (!extraTiers.includes(tier)) extraTiers.push(tier);
    return MORE_TIER_COLORS[extraTiers.indexOf(tier) % MORE_TIER_COLORS.length];
  }

  // ---- Charts ------------------------------------------------------------------------------------

  function niceStep(raw) {
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
  }

  /** 0 and a few round ticks up to at least `max`. */
  function ticks(max, count) {
    const top = max > 0 ? max : 1;
    const step = niceStep(top / (count || 4));
    const out = [];
    for (let v = 0; v < top + step - 1e-9; v += step) out.push(Number(v.toFixed(10)));
    if (out.length < 2) out.push(step);
    return out;
  }

  /**
   * A bar chart: one bar per label, each a stack of `stacks` (one stack: plain bars), and optionally a
   * line on a second axis at the right.
   * opts: {labels, stacks: [{name, color, values}], barColors?, yFormat, title(i, stack, value),
   *        line?: {name, color, values, format, title(i, value)}, valueLabel?(total),
   *        missing?(i): a note for an empty bar, height?}
   */
  function barChart(opts) {
    const n = opts.labels.length;
    const w = 560;
    const hgt = opts.height || 240;
    const m = { top: 16, right: opts.line ? 52 : 12, bottom: 28, left: 50 };
    const pw = w - m.left - m.right;
    const ph = hgt - m.top - m.bottom;
    const totals = opts.labels.map((_, i) => sum(opts.stacks.map((st) => st.values[i])));
    const yTicks = ticks(Math.max(0, ...totals));
    const yMax = yTicks[yTicks.length - 1];
    const yOf = (v) => m.top + ph - (v / yMax) * ph;
    const root = s('svg', { viewBox: `0 0 ${w} ${hgt}`, role: 'img', 'aria-label': opts.label || '' });

    for (const t of yTicks) {
      root.append(s('line', { class: 'grid', x1: m.left, x2: w - m.right, y1: yOf(t), y2: yOf(t) }));
      root.append(s('text', { x: m.left - 6, y: yOf(t) + 4, 'text-anchor': 'end', text: opts.yFormat(t) }));
    }

    const band = pw / Math.max(n, 1);
    const bw = Math.max(2, Math.min(band * 0.62, 56));
    const every = Math.ceil(n / Math.max(1, Math.floor(pw / 44)));
    for (let i = 0; i < n; i++) {
      const cx = m.left + band * i + band / 2;
      let acc = 0;
      opts.stacks.forEach((st) => {
        const v = st.values[i];
        if (!isNum(v) || v <= 0) return;
        const y = yOf(acc + v);
        root.append(s('rect', {
          class: 'bar', x: cx - bw / 2, y, width: bw, height: Math.max(1, yOf(acc) - y),
          fill: (opts.barColors && opts.barColors[i]) || st.color,
        }, s('title', { text: opts.title(i, st, v) })));
        acc += v;
      });
      if (acc > 0 && opts.valueLabel && band >= 34) {
        root.append(s('text', { class: 'value-label', x: cx, y: yOf(acc) - 4, 'text-anchor': 'middle', text: opts.valueLabel(acc) }));
      } else if (acc === 0 && opts.missing && opts.missing(i) && band >= 40) {
        root.append(s('text', { x: cx, y: m.top + ph - 6, 'text-anchor': 'middle', text: opts.missing(i) }));
      }
      if (i % every === 0) {
        root.append(s('text', { x: cx, y: hgt - m.bottom + 16, 'text-anchor': 'middle', text: opts.labels[i] }));
      }
    }
    root.append(s('line', { class: 'axis-line', x1: m.left, x2: w - m.right, y1: yOf(0), y2: yOf(0) }));

    if (opts.line) drawLine(root, opts.line, { n, band, m, w, ph, yOfBase: m.top + ph });
    return root;
  }

  /** The line series of `barChart`, scaled on its own axis at the right. */
  function drawLine(root, line, g) {
    const vals = line.values;
    const lTicks = ticks(Math.max(0, ...vals.filter(isNum)));
    const lMax = lTicks[lTicks.length - 1];
    const yOf = (v) => g.yOfBase - (v / lMax) * g.ph;
    for (const t of lTicks) {
      root.append(s('text', { x: g.w - g.m.right + 6, y: yOf(t) + 4, 'text-anchor': 'start', fill: line.color, text: line.format(t) }));
    }
    let d = '';
    let pen = false;
    vals.forEach((v, i) => {
      if (!isNum(v)) { pen = false; return; }
      const x = g.m.left + g.band * i + g.band / 2;
      d += `${pen ? 'L' : 'M'}${x.toFixed(1)},${yOf(v).toFixed(1)}`;
      pen = true;
    });
    if (d) root.append(s('path', { d, fill: 'none', stroke: line.color, 'stroke-width': 2.5, 'stroke-linejoin': 'round' }));
    vals.forEach((v, i) => {
      if (!isNum(v)) return;
      const x = g.m.left + g.band * i + g.band / 2;
      root.append(s('circle', { class: 'dot', cx: x, cy: yOf(v), r: 4.5, fill: line.color, stroke: '#fff', 'stroke-width': 1.5 },
        s('title', { text: line.title(i, v) })));
    });
  }

  function legend(items) {
    return h('div', { class: 'legend' }, items.map((it) => h('span', { class: 'item' }, swatch(it.color, it.line), it.name)));
  }

  const emptyNote = (text) => h('p', { class: 'empty', text });

  // ---- Panels ------------------------------------------------------------------------------------

  function renderHeader(report) {
    const days = Math.round((report.now_ms - report.since_ms) / 86400000);
    $('#period').textContent = `${fmtDate(report.since_ms)} – ${fmtDate(report.now_ms)} (${days} days) · ` +
      `${fmtInt(report.ledger_entries)} ledger entries`;
    $('#foot').textContent = `Computed ${fmtTime(report.now_ms)} UTC` + (state.live ? '' : ' · static report');
  }

  function renderSummary(report) {
    const all = (report.rows || []).find((r) => r.class === 'all' && r.tier === 'all') || {};
    const lead = all.lead_time_h || {};
    const rework = all.rework_14d || {};
    const kpi = (label, value, sub, tone) => h('div', { class: 'kpi tone-' + tone },
      h('div', { class: 'label', text: label }), h('div', { class: 'value', text: value }), h('div', { class: 'sub', text: sub }));
    fill($('#kpis'),
      kpi('Changes', fmtInt(all.changes), `${fmtInt(all.requests)} requests`, 'route'),
      kpi('Merged', fmtInt(all.merged), isNum(all.changes) && all.changes > 0 ? `${fmtPct(all.merged / all.changes, 0)} of changes` : DASH, 'good'),
      kpi('Lead time p50', fmtHours(lead.p50), `p90 ${fmtHours(lead.p90)}`, 'time'),
      kpi('Rework 14d', fmtPct(rework.share), `${fmtInt(rework.reworked)} of ${fmtInt(rework.lines)} lines`, 'risk'),
      kpi('Reverts', fmtInt(all.reverts), 'merged changes reverted', 'risk'),
      kpi('Regressions', fmtInt(all.regressions), 'fixed or failed later', 'risk'),
      kpi('Cost per merged', fmtUsd(all.cost_per_merged_usd), `${fmtUsd(all.cost_usd)} in total`, 'cost'),
      kpi('Escalations', fmtInt(all.escalations), 'live → deep', 'route'));
  }

  function renderTrend(weeks) {
    const box = $('#trend .chart');
    if (!weeks.length) return fill(box, emptyNote('No weeks in this period.'));
    const labels = weeks.map((w) => fmtDay(w.start_ms));
    const leads = weeks.map((w) => w.lead_time_p50_h);
    // The right axis in minutes, hours or days, whichever gives readable ticks.
    const longest = Math.max(0, ...leads.filter(isNum));
    const unit = longest < 2 ? { per: 60, name: ' min' } : longest >= 72 ? { per: 1 / 24, name: ' d' } : { per: 1, name: ' h' };
    fill(box, barChart({
      label: 'Merged changes and lead time per week',
      labels,
      stacks: [{ name: 'Merged', color: PALETTE.merged, values: weeks.map((w) => w.merged) }],
      yFormat: fmtInt,
      title: (i, st, v) => `Week of ${labels[i]}: ${fmtInt(v)} merged of ${fmtInt(weeks[i].changes)} changes`,
      valueLabel: fmtInt,
      line: {
        name: 'Lead time p50', color: PALETTE.lead, values: leads.map((v) => (isNum(v) ? v * unit.per : null)),
        format: (t) => fmtNum(t) + unit.name,
        title: (i) => `Week of ${labels[i]}: median lead time ${fmtHours(leads[i])}`,
      },
    }), legend([
      { name: 'Merged changes', color: PALETTE.merged },
      { name: 'Lead time p50 (right axis)', color: PALETTE.lead, line: true },
    ]));
  }

  function renderRework(weeks) {
    const box = $('#rework .chart');
    if (!weeks.length) return fill(box, emptyNote('No weeks in this period.'));
    const labels = weeks.map((w) => fmtDay(w.start_ms));
    const shares = weeks.map((w) => (w.rework_14d && isNum(w.rework_14d.share) ? w.rework_14d.share * 100 : null));
    fill(box, barChart({
      label: 'Rework within 14 days per week',
      labels,
      stacks: [{ name: 'Rework 14d', color: PALETTE.rework, values: shares }],
      yFormat: (t) => fmtNum(t) + '%',
      title: (i) => {
        const r = weeks[i].rework_14d;
        return `Week of ${labels[i]}: ${fmtPct(r.share)} (${fmtInt(r.reworked)} of ${fmtInt(r.lines)} lines, ${fmtInt(r.commits)} commits)`;
      },
      valueLabel: (v) => v.toFixed(1) + '%',
      missing: (i) => (weeks[i].merged > 0 ? 'open' : null),
    }), legend([{ name: 'Lines changed again within 14 days ("open": window not over yet)', color: PALETTE.rework }]));
  }

  function renderRouting(weeks) {
    const box = $('#routing .chart');
    const totalsBox = $('#routing .totals');
    if (!weeks.length) {
      fill(totalsBox);
      return fill(box, emptyNote('No requests in this period.'));
    }
    const labels = weeks.map((w) => fmtDay(w.start_ms));
    const tiers = orderTiers(weeks.flatMap((w) => Object.keys(w.requests || {})));
    const stacks = tiers.map((t) => ({ name: t, color: tierColor(t), values: weeks.map((w) => (w.requests || {})[t] || 0) }));
    fill(box, barChart({
      label: 'Requests per week and tier',
      labels,
      stacks,
      yFormat: fmtCompact,
      title: (i, st, v) => `Week of ${labels[i]}: ${fmtInt(v)} ${st.name} requests of ${fmtInt(sum(stacks.map((x) => x.values[i])))}`,
    }), legend(stacks.map((st) => ({ name: st.name, color: st.color }))));
    const grand = sum(stacks.map((st) => sum(st.values)));
    const escalations = sum(weeks.map((w) => w.escalations));
    fill(totalsBox,
      stacks.map((st) => {
        const total = sum(st.values);
        return h('div', { class: 'total' },
          h('div', { class: 'label' }, swatch(st.color), st.name),
          h('div', { class: 'value', text: fmtInt(total) }),
          h('div', { class: 'sub', text: grand > 0 ? fmtPct(total / grand) + ' of requests' : DASH }));
      }),
      h('div', { class: 'total' }, h('div', { class: 'label', text: 'Escalated' }),
        h('div', { class: 'value', text: fmtInt(escalations) }), h('div', { class: 'sub', text: 'live → deep' })));
  }

  /** A table from column specs {head, get(row), cls?} and rows; `rowAttrs(row)` adds attributes to each <tr>. */
  function table(columns, rows, rowAttrs) {
    return h('table', {},
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c.cls || null, text: c.head })))),
      h('tbody', {}, rows.map((r) => h('tr', rowAttrs ? rowAttrs(r) : {},
        columns.map((c) => {
          const v = c.get(r);
          return h('td', { class: c.cls || null }, v === null || v === undefined || v === '' ? DASH : v);
        })))));
  }

  function tierLabel(tier) {
    if (!tier || tier === 'all') return tier || DASH;
    const dot = h('span', { class: 'tier-dot' });
    dot.style.background = tierColor(tier);
    return h('span', {}, dot, tier);
  }

  function renderTiers(tiers) {
    const box = $('#tiers .chart');
    const order = orderTiers(tiers.map((t) => t.tier));
    const rows = [...tiers].sort((a, b) => order.indexOf(a.tier) - order.indexOf(b.tier));
    if (!rows.length) {
      fill($('#tiers .table-wrap'));
      return fill(box, emptyNote('No requests in this period.'));
    }
    const ttft = rows.map((t) => (t.ttft_ms ? t.ttft_ms.p50 : null));
    fill(box, barChart({
      label: 'Median time to first token per tier',
      labels: rows.map((t) => t.tier),
      stacks: [{ name: 'TTFT p50', color: PALETTE.live, values: ttft }],
      barColors: rows.map((t) => tierColor(t.tier)),
      yFormat: (t) => fmtMs(t),
      title: (i, st, v) => `${rows[i].tier}: time to first token p50 ${fmtMs(v)}, p90 ${fmtMs(rows[i].ttft_ms.p90)}`,
      valueLabel: fmtMs,
      missing: () => 'no streams',
      height: 190,
    }));
    const st = (key, part, f) => (r) => f((r[key] || {})[part]);
    fill($('#tiers .table-wrap'), table([
      { head: 'Tier', get: (r) => tierLabel(r.tier), cls: 'text' },
      { head: 'Requests', get: (r) => h('span', { title: `${fmtInt(r.input_tokens)} tokens in, ${fmtInt(r.output_tokens)} out`, text: fmtInt(r.requests) }) },
      { head: 'Errors', get: (r) => fmtInt(r.errors) },
      { head: 'Cancelled', get: (r) => fmtInt(r.cancelled) },
      { head: 'TTFT p50', get: st('ttft_ms', 'p50', fmtMs) },
      { head: 'TTFT p90', get: st('ttft_ms', 'p90', fmtMs) },
      { head: 'Tok/s p50', get: st('tokens_per_s', 'p50', fmtNum) },
      { head: 'Tok/s p90', get: st('tokens_per_s', 'p90', fmtNum) },
      { head: 'Cost', get: (r) => fmtUsd(r.cost_usd) },
    ], rows));
  }

  /** Rows grouped by class (router order), each class's tiers first and its `all` row last. */
  function groupRows(rows) {
    const classRank = (c) => (c === 'all' ? 1000 : CLASS_ORDER.includes(c) ? CLASS_ORDER.indexOf(c) : 500);
    const tiers = orderTiers(rows.map((r) => r.tier));
    const tierRank = (t) => (t === 'all' ? 1000 : tiers.indexOf(t));
    return [...rows].sort((a, b) => classRank(a.class) - classRank(b.class) || a.class.localeCompare(b.class) ||
      tierRank(a.tier) - tierRank(b.tier));
  }

  function renderClasses(rows) {
    const box = $('#classes .table-wrap');
    if (!rows.length) return fill(box, emptyNote('No changes or requests in this period.'));
    const sorted = groupRows(rows);
    const stat = (key, part) => (r) => fmtHours((r[key] || {})[part]);
    const share = (key) => (r) => fmtPct((r[key] || {}).share);
    fill(box, table([
      { head: 'Class', get: (r) => r.class, cls: 'text' },
      { head: 'Tier', get: (r) => tierLabel(r.tier), cls: 'text' },
      { head: 'Changes', get: (r) => fmtInt(r.changes) },
      { head: 'Merged', get: (r) => fmtInt(r.merged) },
      { head: 'Lead p50', get: stat('lead_time_h', 'p50') },
      { head: 'Lead p90', get: stat('lead_time_h', 'p90') },
      { head: 'Bugfix p50', get: (r) => (r.class === 'fix' || r.class === 'all' ? stat('bugfix_time_h', 'p50')(r) : DASH) },
      { head: 'Rework 14d', get: share('rework_14d') },
      { head: 'Rework 21d', get: share('rework_21d') },
      { head: 'Reverts', get: (r) => fmtInt(r.reverts) },
      { head: 'Regr.', get: (r) => fmtInt(r.regressions) },
      { head: 'Escal.', get: (r) => fmtInt(r.escalations) },
      { head: 'Interrupts', get: (r) => fmtInt(r.interrupts) },
      { head: 'Steers', get: (r) => fmtInt(r.steers) },
      { head: 'Tokens / merged', get: (r) => fmtCompact(r.tokens_per_merged) },
      { head: 'Cost / merged', get: (r) => fmtUsd(r.cost_per_merged_usd) },
    ], sorted, (r) => {
      const i = sorted.indexOf(r);
      const first = i === 0 || sorted[i - 1].class !== r.class;
      const cls = [r.tier === 'all' ? 'total-row' : '', r.class === 'all' ? 'grand-total' : '', first && i > 0 ? 'group-start' : '']
        .filter(Boolean).join(' ');
      return { class: cls || null, 'data-class': r.class, 'data-tier': r.tier };
    }));
  }

  function renderBudgets(budgets) {
    const section = $('#budgets');
    section.hidden = !state.live && !budgets.length;
    const box = $('#budgets .bars');
    if (!budgets.length) return fill(box, emptyNote('No budget rules are configured.'));
    fill(box, budgets.map((b) => {
      const share = b.limit > 0 ? b.used / b.limit : null;
      const level = share === null ? '' : share >= 1 ? ' over' : share >= 0.8 ? ' warn' : '';
      const bar = h('div', { class: 'fill' });
      bar.style.width = (share === null ? 0 : Math.min(share, 1) * 100).toFixed(1) + '%';
      const unit = b.unit === 'usd' ? '' : ' ' + b.unit;
      return h('div', { class: 'budget' + level, title: `${b.rule}: ${b.scope}, per ${b.window}` },
        h('div', { class: 'head' },
          h('span', { class: 'name' }, b.rule, h('span', { class: 'scope', text: `${b.scope} · per ${b.window}` })),
          h('span', { class: 'figures', text: `${fmtUnit(b.used, b.unit)} / ${fmtUnit(b.limit, b.unit)}${unit} · ${fmtPct(share, 0)}` })),
        h('div', { class: 'track' }, bar));
    }));
  }

  function renderRepos(repos) {
    const box = $('#repos .table-wrap');
    if (!repos.length) return fill(box, emptyNote('No repositories were read.'));
    fill(box, table([
      { head: 'Path', get: (r) => r.path, cls: 'text path' },
      { head: 'Branch', get: (r) => r.branch, cls: 'text' },
      { head: 'Head', get: (r) => h('span', { class: 'mono', title: r.head, text: short(r.head) }), cls: 'text' },
      { head: 'Commits', get: (r) => fmtInt(r.commits) },
      { head: 'Assisted', get: (r) => `${fmtInt(r.assisted)} (${r.commits > 0 ? fmtPct(r.assisted / r.commits, 0) : DASH})` },
    ], repos));
  }

  function renderAudit(audit) {
    const latest = audit.latest || [];
    $('#audit').hidden = !state.live && !latest.length && !audit.size;
    const badge = $('#audit-badge');
    if (audit.verified === true) {
      badge.className = 'badge ok';
      badge.textContent = `verified · ${fmtInt(audit.verified_size)} entries · ${fmtAgo(audit.verified_at_ms)}`;
    } else if (audit.verified === false) {
      badge.className = 'badge bad';
      badge.textContent = 'verification failed: ' + (audit.message || 'unknown problem');
    } else {
      badge.className = 'badge unknown';
      badge.textContent = 'not yet verified';
    }
    badge.title = [audit.message, audit.verified_at_ms ? 'checked ' + fmtTime(audit.verified_at_ms) + ' UTC' : ''].filter(Boolean).join(' · ');
    $('#audit-hint').textContent = `${fmtInt(audit.size)} entries in the tamper-evident ledger; the newest ${latest.length}` +
      (state.live ? ' (select one to see its inclusion proof and provenance).' : '.');
    const box = $('#audit .table-wrap');
    if (!latest.length) return fill(box, emptyNote('The ledger is empty.'));
    fill(box, table([
      { head: 'Index', get: (e) => (state.live ? h('a', { href: '#entry/' + e.index, text: '#' + e.index }) : '#' + e.index), cls: 'text' },
      { head: 'Time (UTC)', get: (e) => fmtTime(e.ts_ms), cls: 'text' },
      { head: 'Kind', get: (e) => h('span', { class: 'pill ' + e.kind, text: e.kind }), cls: 'text' },
      { head: 'User', get: (e) => e.user, cls: 'text' },
      { head: 'Tier', get: (e) => (e.tier ? tierLabel(e.tier) : null), cls: 'text' },
      { head: 'Class', get: (e) => e.class, cls: 'text' },
      { head: 'Summary', get: (e) => e.summary, cls: 'text summary' },
      { head: 'Task', get: (e) => (e.task ? h('span', { class: 'mono', text: e.task }) : null), cls: 'text' },
      { head: 'Commit', get: (e) => (e.commit ? h('span', { class: 'mono', title: e.commit, text: short(e.commit) }) : null), cls: 'text' },
    ], latest, (e) => ({ class: state.live ? 'clickable' : null, 'data-index': e.index, 'data-kind': e.kind })));
  }

  function render(data) {
    const report = data.report || {};
    renderHeader(report);
    renderSummary(report);
    renderTrend(report.weeks || []);
    renderRework(report.weeks || []);
    renderRouting(report.weeks || []);
    renderTiers(report.tiers || []);
    renderClasses(report.rows || []);
    renderBudgets(data.budgets || []);
    renderRepos(report.repositories || []);
    renderAudit(data.audit || {});
    document.body.dataset.ready = 'true';
    if (state.live) document.body.dataset.since = state.since;
  }

  // ---- Entry panel -------------------------------------------------------------------------------

  function fields(pairs) {
    return h('dl', { class: 'fields' }, pairs.map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v === null || v === undefined ? DASH : v)]));
  }

  const pretty = (value) => h('pre', { class: 'json', text: JSON.stringify(value, null, 2) });

  function entryView(d) {
    const inc = d.inclusion || {};
    const known = ['size', 'leaf_hash', 'proof', 'checkpoint'];
    const extra = Object.keys(inc).filter((k) => !known.includes(k))
      .map((k) => [k, typeof inc[k] === 'object' ? JSON.stringify(inc[k]) : String(inc[k])]);
    const entry = d.entry || {};
    return [
      fields([['Index', '#' + d.index], ['Appended', fmtTime(d.ts_ms) + ' UTC'], ['Kind', entry.kind]]),
      h('h3', { text: 'Sealed entry' }),
      pretty(entry),
      h('h3', { text: 'Inclusion proof' }),
      h('div', { class: 'inclusion' },
        fields([['Tree size', fmtInt(inc.size)], ['Leaf hash', inc.leaf_hash], ...extra,
          ['Audit path', Array.isArray(inc.proof) && inc.proof.length
            ? h('ol', { class: 'proof' }, inc.proof.map((p) => h('li', { text: p }))) : '(none: the tree has one leaf)']]),
        inc.checkpoint ? [h('h3', { text: 'Signed checkpoint' }), typeof inc.checkpoint === 'string'
          ? h('pre', { class: 'json', text: inc.checkpoint }) : pretty(inc.checkpoint)] : null),
      d.attestation
        ? [h('h3', { text: 'Provenance' }), h('p', { class: 'hint', text: 'in-toto v1 Statement attesting this change.' }), pretty(d.attestation)]
        : h('p', { class: 'hint', text: 'No provenance attestation: only accepted changes have one.' }),
    ];
  }

  async function showEntry(index) {
    const panel = $('#entry');
    const body = $('#entry-body');
    const request = ++state.entryRequest;
    panel.hidden = false;
    $('#entry-title').textContent = 'Ledger entry #' + index;
    document.querySelectorAll('#audit tr.selected').forEach((tr) => tr.classList.remove('selected'));
    const row = $(`#audit tr[data-index="${index}"]`);
    if (row) row.classList.add('selected');
    if (!state.live) return fill(body, emptyNote('Entry details are served by the gateway (tandem serve, /ui).'));
    fill(body, emptyNote('Loading…'));
    let data;
    try {
      const res = await fetch('/ui/api/entry/' + index, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (res.status === 401) { location.href = '/ui'; return; }
      if (!res.ok) throw new Error(await errorText(res));
      data = await res.json();
    } catch (err) {
      if (request === state.entryRequest) fill(body, h('p', { class: 'notice bad', text: 'Cannot load entry #' + index + ': ' + err.message }));
      return;
    }
    if (request === state.entryRequest) fill(body, entryView(data));
  }

  function closeEntry() {
    state.entryRequest++;
    $('#entry').hidden = true;
    document.querySelectorAll('#audit tr.selected').forEach((tr) => tr.classList.remove('selected'));
  }

  function onHash() {
    const m = /^#entry\/(\d+)$/.exec(location.hash);
    if (m) showEntry(Number(m[1]));
    else closeEntry();
  }

  // ---- Loading -----------------------------------------------------------------------------------

  function showStatus(text, bad) {
    const box = $('#status');
    box.hidden = !text;
    box.className = bad ? 'notice bad' : 'notice';
    box.textContent = text || '';
  }

  async function errorText(res) {
    try {
      const body = await res.json();
      if (body && body.error) return typeof body.error === 'string' ? body.error : body.error.message || `HTTP ${res.status}`;
    } catch (_) { /* not JSON */ }
    return `HTTP ${res.status}`;
  }

  async function load(quiet) {
    // The server computes the report on request; say so when that takes a while.
    const slow = quiet ? null : setTimeout(() => showStatus('Computing the report…'), 800);
    let data;
    try {
      const res = await fetch('/ui/api/dashboard?since=' + encodeURIComponent(state.since),
        { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (res.status === 401) { location.href = '/ui'; return; }
      if (!res.ok) throw new Error(await errorText(res));
      data = await res.json();
    } catch (err) {
      clearTimeout(slow);
      showStatus('Cannot load the dashboard: ' + err.message, true);
      return;
    }
    clearTimeout(slow);
    showStatus('');
    render(data);
  }

  function schedule() {
    clearInterval(state.timer);
    state.timer = setInterval(() => {
      if (document.visibilityState === 'visible') load(true);
    }, REFRESH_MS);
  }

  function main() {
    const embedded = document.getElementById('tandem-data');
    $('#entry-close').addEventListener('click', () => { location.hash = ''; });
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && !$('#entry').hidden) location.hash = '';
    });
    $('#audit').addEventListener('click', (ev) => {
      const tr = ev.target.closest('tr[data-index]');
      if (!state.live || !tr || ev.target.closest('a')) return;
      location.hash = 'entry/' + tr.dataset.index;
    });
    window.addEventListener('hashchange', onHash);

    if (embedded) {
      state.live = false;
      $('#since-label').hidden = true;
      $('#logout-form').hidden = true;
      try {
        render(JSON.parse(embedded.textContent));
      } catch (err) {
        showStatus('The embedded report cannot be read: ' + err.message, true);
      }
      onHash();
      return;
    }
    const select = $('#since');
    state.since = select.value || '30d';
    select.addEventListener('change', () => { state.since = select.value; load(false); });
    load(false).then(onHash);
    schedule();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
  else main();
})();
