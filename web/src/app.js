// dmarcd dashboard. Reads only the REST API under api/v1/ (relative URLs, so the
// dashboard works behind a reverse proxy that mounts dmarcd under a prefix).
//
// Every string that comes from a report is untrusted: reporters choose their
// org_name, report ids, selectors, domains and comments. Text only ever reaches
// the page through textContent / createTextNode (the el() function below);
// nothing built from data is ever parsed as HTML.
//
// The view lives in the URL fragment so it can be bookmarked and reloaded:
//   #/?domain=example.com&from=2025-01-01&to=2025-01-31   overview
//   #/sources?domain=example.com&result=fail_both&offset=50
//   #/sources/192.0.2.1?domain=example.com               one source's records and reports
//   #/reporters, #/reports, #/reports/42, #/policy, #/failure-reports, #/failure-reports/7
// "to" in the URL and the form is the last day shown (inclusive); the API's
// "to" is exclusive, so requests send the day after. Days are UTC days (the
// API's unit); instants are shown in the browser's time zone, labelled.
'use strict';

(() => {
  const kPageSize = 50;
  const kRecordPageSize = 100;
  const kTopSources = 5;
  const kNumber = new Intl.NumberFormat('en-US');
  const kPercent =
      new Intl.NumberFormat('en-US', {minimumFractionDigits: 1, maximumFractionDigits: 1});
  const kZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  // Swedish writes dates and times the ISO way: "2026-06-16 14:05".
  const kLocalTime = new Intl.DateTimeFormat('sv-SE', {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
    hourCycle: 'h23',
  });
  const kMonthDay =
      new Intl.DateTimeFormat('en-GB', {day: 'numeric', month: 'short', timeZone: 'UTC'});
  const kMonthYear =
      new Intl.DateTimeFormat('en-GB', {month: 'short', year: 'numeric', timeZone: 'UTC'});
  const kColours = {
    pass: '#2f9e6e', fail: '#d9534f', none: '#8aa0b8', quarantine: '#e0a030', reject: '#8e2a2a',
    line: '#1c2530',
  };

  const $ = (id) => document.getElementById(id);

  let domains = [];
  // The source rows last listed, so a drill-down opened from a list can show
  // the source's figures without asking again.
  const source_rows = new Map();
  let chart = null;
  let domains_loaded = null;

  // ---- building the DOM: text only ----

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function items(page) {
    return page && Array.isArray(page.items) ? page.items : [];
  }

  // ---- URL state ----

  const kRoutes = [
    [/^\/$/, 'overview'],
    [/^\/sources$/, 'sources'],
    [/^\/sources\/([^/]+)$/, 'source'],
    [/^\/reporters$/, 'reporters'],
    [/^\/reports$/, 'reports'],
    [/^\/reports\/(\d+)$/, 'report'],
    [/^\/policy$/, 'policy'],
    [/^\/failure-reports$/, 'failures'],
    [/^\/failure-reports\/(\d+)$/, 'failure'],
  ];
  // The list a detail view belongs to: its tab, and where a filter change goes.
  const kParentView = {source: 'sources', report: 'reports', failure: 'failures'};
  const kViewPath = {
    overview: '/', sources: '/sources', source: '/sources/', reporters: '/reporters',
    reports: '/reports', report: '/reports/', policy: '/policy', failures: '/failure-reports',
    failure: '/failure-reports/',
  };

  function parseHash() {
    const hash = location.hash.replace(/^#/, '') || '/';
    const q = hash.indexOf('?');
    const path = q < 0 ? hash : hash.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : hash.slice(q + 1));
    let view = 'overview';
    let id = null;
    for (const [pattern, name] of kRoutes) {
      const match = pattern.exec(path);
      if (!match) continue;
      view = name;
      if (match[1] !== undefined) {
        try {
          id = decodeURIComponent(match[1]);
        } catch (err) {
          id = match[1];
        }
      }
      break;
    }
    const isDay = (s) => /^\d{4}-\d{2}-\d{2}$/.test(s || '');
    const oneOf = (value, allowed) => (allowed.includes(value) ? value : allowed[0]);
    return {
      view,
      id,
      domain: params.get('domain') || '',
      from: isDay(params.get('from')) ? params.get('from') : '',
      to: isDay(params.get('to')) ? params.get('to') : '',
      offset: Math.max(0, parseInt(params.get('offset') || '0', 10) || 0),
      result: oneOf(params.get('result'), ['all', 'fail', 'fail_both', 'pass']),
      sort: oneOf(params.get('sort'), ['failing', 'messages', 'last_seen', 'source_ip']),
      chart: oneOf(params.get('chart'), ['result', 'disposition']),
    };
  }

  // The hash of `view` with the filters of `state` and the view's own `extra`
  // parameters (empty values and defaults left out, so URLs stay short).
  function viewHash(view, state, extra, id) {
    const params = new URLSearchParams();
    if (state.domain) params.set('domain', state.domain);
    if (state.from) params.set('from', state.from);
    if (state.to) params.set('to', state.to);
    for (const [key, value] of Object.entries(extra || {})) {
      if (value !== '' && value !== null && value !== undefined && value !== 0) {
        params.set(key, String(value));
      }
    }
    const path = kViewPath[view] + (id === undefined || id === null ? '' : encodeURIComponent(id));
    const query = params.toString();
    return '#' + path + (query ? '?' + query : '');
  }

  function navigate(hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  }

  // ---- dates and times ----

  function addDays(day, n) {
    const d = new Date(day + 'T00:00:00Z');
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  // The UTC day holding the instant just before `iso` (an exclusive end).
  function dayBefore(iso) {
    return new Date(Date.parse(iso) - 1000).toISOString().slice(0, 10);
  }

  // An instant from the API (UTC) in the browser's time zone.
  function localTime(iso) {
    const ms = typeof iso === 'string' ? Date.parse(iso) : NaN;
    return Number.isNaN(ms) ? '–' : kLocalTime.format(new Date(ms));
  }

  // A report's date range as UTC days when it covers whole days (nearly all
  // do; many reporters end at 23:59:59 instead of the next midnight, RFC 7489
  // Appendix C leaves that open), else as local times.
  function period(begin, end) {
    if (typeof begin !== 'string' || typeof end !== 'string') return '–';
    if (!/T00:00:00Z$/.test(begin) || !/T(00:00:00|23:59:59)Z$/.test(end)) {
      return `${localTime(begin)} – ${localTime(end)} (${kZone})`;
    }
    const first = begin.slice(0, 10);
    const last = dayBefore(end);
    return last <= first ? first : `${first} – ${last}`;
  }

  function apiRange(state) {
    const params = {};
    if (state.domain) params.domain = state.domain;
    if (state.from) params.from = state.from;
    if (state.to) params.to = addDays(state.to, 1);
    return params;
  }

  // The days the data of the chosen domain (or of all) spans, as [first, last].
  function dataSpan(state) {
    const rows = state.domain ? domains.filter((d) => d.domain === state.domain) : domains;
    let first = '';
    let last = '';
    for (const row of rows) {
      if (typeof row.first === 'string' && (!first || row.first.slice(0, 10) < first)) {
        first = row.first.slice(0, 10);
      }
      if (typeof row.last === 'string' && dayBefore(row.last) > last) last = dayBefore(row.last);
    }
    return {first, last};
  }

  // ---- API ----

  class ApiError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code;
      // A route this dmarcd does not serve (an older server): the view says
      // so instead of failing as a whole.
      this.unavailable = status === 404 && /no such endpoint/.test(message);
    }
  }

  function apiUrl(path, params) {
    const query = new URLSearchParams(params || {}).toString();
    return 'api/v1/' + path + (query ? '?' + query : '');
  }

  async function api(path, params) {
    const url = apiUrl(path, params);
    let response;
    try {
      response = await fetch(url, {headers: {Accept: 'application/json'}});
    } catch (err) {
      throw new ApiError(`Cannot reach dmarcd (${url}): ${err.message}`, 0, 'network');
    }
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      if (response.ok) throw new ApiError(`${url}: the answer is not JSON (${err.message})`, 0, '');
    }
    if (!response.ok) {
      const error = body && body.error ? body.error : {};
      const code = error.code || String(response.status);
      const message = error.message || response.statusText || 'request failed';
      throw new ApiError(`${url}: ${code}: ${message}`, response.status, code);
    }
    return body;
  }

  function reportError(err) {
    const text = err instanceof ApiError ? err.message : `Unexpected error: ${err && err.message}`;
    $('errors').append(el('p', {class: 'error'}, text));
    console.error(err);
  }

  // Shows `node` (an .empty paragraph) with its own text, or with `text`.
  function setEmpty(node, visible, text) {
    if (node.dataset.text === undefined) node.dataset.text = node.textContent.trim();
    node.textContent = text || node.dataset.text;
    node.classList.toggle('unavailable', Boolean(text));
    show(node, visible);
  }

  // Fills a table from one API list. A route the server lacks leaves a note
  // in place of the table; any other error goes to the error list.
  async function fillTable({path, params, table, empty, count, row}) {
    const tbody = table.querySelector('tbody');
    clear(tbody);
    let page;
    try {
      page = await api(path, params);
    } catch (err) {
      if (!(err instanceof ApiError) || !err.unavailable) throw err;
      setEmpty(empty, true, `Not available: this dmarcd does not answer api/v1/${path} yet.`);
      show(table.parentElement, false);
      if (count) count.textContent = '';
      return null;
    }
    const list = items(page);
    for (const item of list) tbody.append(row(item));
    setEmpty(empty, list.length === 0);
    show(table.parentElement, list.length > 0);
    if (count) count.textContent = `(${kNumber.format(Number(page.total) || 0)})`;
    return page;
  }

  function renderPager(nav, offset, shown, total, page_size, hashFor) {
    clear(nav);
    show(nav, total > shown || offset > 0);
    const link = (text, target, enabled, name) => (enabled ?
        el('a', {class: 'button', href: hashFor(target), 'data-page': name}, text) :
        el('span', {class: 'button disabled', 'aria-disabled': 'true', 'data-page': name}, text));
    const first = shown ? offset + 1 : 0;
    nav.append(link('← Previous', Math.max(0, offset - page_size), offset > 0, 'prev'),
               el('span', {class: 'page-label'}, `${kNumber.format(first)}–` +
                   `${kNumber.format(offset + shown)} of ${kNumber.format(total)}`),
               link('Next →', offset + page_size, offset + shown < total, 'next'));
  }

  function setActive(node, active) {
    node.classList.toggle('active', active);
    if (active) node.setAttribute('aria-current', 'true');
    else node.removeAttribute('aria-current');
  }

  function csvLink(node, path, params) {
    node.setAttribute('href', apiUrl(path, {...params, format: 'csv'}));
    node.setAttribute('download', path.replace(/\W+/g, '-') + '.csv');
  }

  // ---- small pieces ----

  // "1 report", "2,301 reports".
  function count(n, noun) {
    const value = Number(n) || 0;
    return `${kNumber.format(value)} ${noun}${value === 1 ? '' : 's'}`;
  }

  function percent(part, whole) {
    return whole > 0 ? kPercent.format((100 * part) / whole) + ' %' : '–';
  }

  function rateBar(pass, messages) {
    const text = percent(pass, messages);
    const bar = el('span', {class: 'bar', 'aria-hidden': 'true'}, el('span', {class: 'bar-fill'}));
    if (messages > 0) bar.firstChild.style.width = `${(100 * pass) / messages}%`;
    return el('span', {class: 'rate'}, bar, el('span', {class: 'rate-text'}, text));
  }

  function textList(values, limit) {
    const list = Array.isArray(values) ? values : [];
    if (list.length === 0) return el('span', {class: 'muted'}, '–');
    const shown = list.slice(0, limit || list.length);
    const node = el('ul', {class: 'plain'});
    for (const value of shown) node.append(el('li', {}, value));
    if (list.length > shown.length) {
      node.append(el('li', {class: 'muted'}, `+ ${list.length - shown.length} more`));
    }
    return node;
  }

  function resultBadge(value) {
    const text = value === null || value === undefined || value === '' ? '–' : String(value);
    const bad = ['fail', 'softfail', 'permerror', 'temperror'].includes(text);
    const kind = text === 'pass' ? 'good' : (bad ? 'bad' : 'neutral');
    return el('span', {class: 'badge ' + kind}, text);
  }

  function dispositionBadge(value) {
    const text = value || '–';
    const kind = text === 'reject' ? 'bad' : (text === 'quarantine' ? 'warn' : 'neutral');
    return el('span', {class: 'badge ' + kind}, text);
  }

  function policyBadge(value) {
    if (value === null || value === undefined || value === '') {
      return el('span', {class: 'muted'}, '–');
    }
    const text = String(value);
    const kind = text === 'reject' ? 'good' : (text === 'quarantine' ? 'warn' : 'neutral');
    return el('span', {class: 'badge ' + kind}, text);
  }

  function authList(results, describe) {
    const list = el('ul', {class: 'auth'});
    for (const r of Array.isArray(results) ? results : []) {
      const item = el('li', {}, resultBadge(r.result), ' ', describe(r));
      if (r.human_result) item.append(el('span', {class: 'muted'}, ` (${r.human_result})`));
      list.append(item);
    }
    return list.childElementCount ? list : el('span', {class: 'muted'}, '–');
  }

  function dkimList(results) {
    return authList(results, (d) => `${d.domain || '–'}${d.selector ? ' / ' + d.selector : ''}`);
  }

  function spfList(results) {
    return authList(results, (s) => `${s.domain || '–'}${s.scope ? ' (' + s.scope + ')' : ''}`);
  }

  function identifiers(rec) {
    const list = el('ul', {class: 'auth'});
    for (const [name, value] of [['header', rec.header_from], ['envelope', rec.envelope_from],
                                 ['to', rec.envelope_to]]) {
      if (value) list.append(el('li', {}, el('span', {class: 'muted'}, name + ': '), value));
    }
    return list.childElementCount ? list : el('span', {class: 'muted'}, '–');
  }

  function reverseDns(name) {
    return name ? el('div', {class: 'rdns'}, name) : el('div', {class: 'rdns muted'}, '—');
  }

  // ---- filters ----

  async function loadDomains() {
    const body = await api('domains');
    domains = items(body);
    const select = $('domain');
    while (select.options.length > 1) select.remove(1);
    for (const d of domains) select.append(el('option', {value: d.domain}, d.domain));
    show($('empty-state'), domains.length === 0);
  }

  function syncForm(state) {
    const select = $('domain');
    if (state.domain && !domains.some((d) => d.domain === state.domain)) {
      // A bookmarked domain with no data (yet): keep it selectable.
      select.append(el('option', {value: state.domain}, state.domain));
    }
    select.value = state.domain;
    $('from').value = state.from;
    $('to').value = state.to;
    for (const tab of document.querySelectorAll('.tabs a[data-tab]')) {
      const name = tab.dataset.tab;
      tab.setAttribute('href', viewHash(name, state));
      setActive(tab, name === (kParentView[state.view] || state.view));
    }
  }

  // Presets end at the newest data of the chosen domain (or of all domains),
  // not at today: an archive imported once still shows its last weeks, and
  // for a domain that receives reports daily the two are the same.
  function presetEnd(state) {
    return dataSpan(state).last || new Date().toISOString().slice(0, 10);
  }

  // A filter change keeps the list view (a detail view goes back to its
  // list, the source drill-down stays) and starts again at the first page.
  function filterTarget(state) {
    if (state.view === 'source') return viewHash('source', state, {}, state.id);
    const view = kParentView[state.view] || state.view;
    const extra = view === 'sources' ? {result: state.result === 'all' ? '' : state.result,
                                        sort: state.sort === 'failing' ? '' : state.sort} :
                                       {chart: view === 'overview' && state.chart !== 'result' ?
                                            state.chart : ''};
    return viewHash(view, state, extra);
  }

  function wireFilters() {
    const form = $('filters');
    form.addEventListener('submit', (event) => event.preventDefault());
    form.addEventListener('change', () => {
      const state = parseHash();
      state.domain = $('domain').value;
      state.from = $('from').value;
      state.to = $('to').value;
      navigate(filterTarget(state));
    });
    for (const button of form.querySelectorAll('button[data-days]')) {
      button.addEventListener('click', () => {
        const state = parseHash();
        if (button.dataset.days === 'all') {
          state.from = '';
          state.to = '';
        } else {
          state.to = presetEnd(state);
          state.from = addDays(state.to, 1 - parseInt(button.dataset.days, 10));
        }
        navigate(filterTarget(state));
      });
    }
    $('sources-sort').addEventListener('change', () => {
      const state = parseHash();
      navigate(viewHash('sources', state, {
        result: state.result === 'all' ? '' : state.result,
        sort: $('sources-sort').value === 'failing' ? '' : $('sources-sort').value,
      }));
    });
  }

  // ---- overview ----

  function setFigure(id, value, text) {
    const node = $(id);
    node.textContent = text;
    node.dataset.value = value === null ? '' : String(value);
  }

  // What p=reject would have blocked: the failing messages a receiver did not
  // reject already (RFC 7489 section 6.3; quarantined mail counts, since
  // reject would have refused it at SMTP time). Aggregate figures do not say
  // which rejections were of failing mail, so rejections count as failing.
  function wouldReject(f) {
    const fail = Number(f.dmarc_fail) || 0;
    const rejected = Number((f.disposition || {}).reject) || 0;
    return Math.max(0, fail - rejected);
  }

  function renderSummary(s) {
    const messages = Number(s.messages) || 0;
    setFigure('summary-messages', messages, kNumber.format(messages));
    setFigure('summary-pass-rate', s.dmarc_pass, percent(s.dmarc_pass, messages));
    $('summary-pass-note').textContent =
        `${kNumber.format(s.dmarc_pass)} pass · ${kNumber.format(s.dmarc_fail)} fail`;
    const blocked = wouldReject(s);
    setFigure('summary-would-reject', blocked, kNumber.format(blocked));
    $('summary-would-reject-note').textContent =
        messages > 0 ? `would block ${percent(blocked, messages)}` : '';
    setFigure('summary-dkim', s.dkim_aligned_pass, kNumber.format(s.dkim_aligned_pass));
    $('summary-dkim-note').textContent = percent(s.dkim_aligned_pass, messages);
    setFigure('summary-spf', s.spf_aligned_pass, kNumber.format(s.spf_aligned_pass));
    $('summary-spf-note').textContent = percent(s.spf_aligned_pass, messages);
    const disposition = s.disposition || {};
    for (const kind of ['none', 'quarantine', 'reject']) {
      const n = Number(disposition[kind]) || 0;
      setFigure('summary-disp-' + kind, n, kNumber.format(n));
    }
  }

  function renderRangeLabel(state) {
    const what = state.domain || 'all domains';
    let when = 'all dates';
    if (state.from && state.to) when = `${state.from} to ${state.to}`;
    else if (state.from) when = `from ${state.from}`;
    else if (state.to) when = `up to ${state.to}`;
    $('range-label').textContent = `(${what}, ${when})`;
  }

  // The chart covers the filter's range, or the data's when the filter leaves
  // an end open, so the API can fill empty buckets into a continuous axis.
  // The bucket keeps the bars countable: days up to about three months,
  // weeks up to two years, months beyond.
  function chartQuery(state) {
    const span = dataSpan(state);
    const first = state.from || span.first;
    const last = state.to || span.last;
    if (!first || !last || last < first) return null;
    const days = (Date.parse(last) - Date.parse(first)) / 86400000 + 1;
    const bucket = days <= 100 ? 'day' : (days <= 731 ? 'week' : 'month');
    const params = {from: first, to: addDays(last, 1), bucket, fill: 'true'};
    if (state.domain) params.domain = state.domain;
    return params;
  }

  function bucketLabel(date, bucket) {
    const d = new Date(date + 'T00:00:00Z');
    if (Number.isNaN(d.getTime())) return date;
    if (bucket === 'month') return kMonthYear.format(d);
    if (bucket === 'week') return 'w/c ' + kMonthDay.format(d);
    return kMonthDay.format(d);
  }

  function chartDatasets(list, by) {
    const figure = (key) => list.map((d) => Number(d[key]) || 0);
    const disposition = (key) => list.map((d) => Number((d.disposition || {})[key]) || 0);
    const bar = (label, data, colour) => ({
      type: 'bar', label, data, backgroundColor: colour, stack: 'messages', maxBarThickness: 48,
      order: 2,
    });
    const bars = by === 'disposition' ?
        [bar('Delivered (none)', disposition('none'), kColours.none),
         bar('Quarantined', disposition('quarantine'), kColours.quarantine),
         bar('Rejected', disposition('reject'), kColours.reject)] :
        [bar('DMARC pass', figure('dmarc_pass'), kColours.pass),
         bar('DMARC fail', figure('dmarc_fail'), kColours.fail)];
    bars.push({
      type: 'line', label: 'p=reject would block', data: list.map(wouldReject),
      borderColor: kColours.line, backgroundColor: kColours.line, borderWidth: 2,
      borderDash: [6, 4], stack: 'would-reject', order: 1, tension: 0, pointStyle: 'line',
      // Points only where something would have been blocked: a row of dots
      // along zero hides the bars' baseline.
      pointRadius: (ctx) => (ctx.raw > 0 && list.length <= 120 ? 3 : 0),
    });
    return bars;
  }

  function renderChart(series, by, bucket) {
    const list = items(series);
    show($('trend-empty'), list.length === 0 || list.every((d) => !Number(d.messages)));
    if (typeof window.Chart !== 'function') {
      throw new ApiError('The chart library did not load (vendor/chart.umd.js).', 0, '');
    }
    if (chart) chart.destroy();
    const labels = list.map((d) => d.date);
    chart = new window.Chart($('trend-chart'), {
      type: 'bar',
      data: {labels, datasets: chartDatasets(list, by)},
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: {mode: 'index', intersect: false},
        scales: {
          x: {
            stacked: true,
            grid: {display: false},
            ticks: {
              autoSkip: true, maxRotation: 0,
              callback(value) {
                return bucketLabel(this.getLabelForValue(value), bucket);
              },
            },
          },
          y: {stacked: true, beginAtZero: true, ticks: {precision: 0}},
        },
        plugins: {
          legend: {
            position: 'bottom',
            labels: {
              boxWidth: 14, usePointStyle: true, sort: (a, b) => a.datasetIndex - b.datasetIndex,
            },
          },
          tooltip: {callbacks: {title: (ctx) => bucketLabel(ctx[0].label, bucket) + ' (UTC)'}},
        },
      },
    });
    chart.$dmarcd = {bucket, by};
  }

  async function renderTrend(state) {
    const by = state.chart;
    const make = (value) => viewHash('overview', state, {chart: value === 'result' ? '' : value});
    for (const [id, value] of [['chart-by-result', 'result'],
                               ['chart-by-disposition', 'disposition']]) {
      $(id).setAttribute('href', make(value));
      setActive($(id), by === value);
    }
    const query = chartQuery(state);
    if (!query) {
      if (chart) chart.destroy();
      chart = null;
      $('trend-bucket').textContent = '';
      setEmpty($('trend-empty'), true);
      return;
    }
    let series;
    try {
      series = await api('timeseries', query);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 400) throw err;
      // A server without bucket/fill refuses them by name.
      if (chart) chart.destroy();
      chart = null;
      setEmpty($('trend-empty'), true, 'Not available: this dmarcd cannot bucket the trend yet.');
      return;
    }
    setEmpty($('trend-empty'), false);
    $('trend-bucket').textContent = `(messages per ${query.bucket}, UTC)`;
    renderChart(series, by, query.bucket);
  }

  function sourceKey(state, ip) {
    return JSON.stringify([apiRange(state), ip]);
  }

  function sourceCell(state, s) {
    source_rows.set(sourceKey(state, s.source_ip), s);
    return el('td', {},
        el('a', {class: 'mono', href: viewHash('source', state, {}, s.source_ip)}, s.source_ip),
        reverseDns(s.reverse_dns));
  }

  function topSourceRow(state, s) {
    const messages = Number(s.messages) || 0;
    return el('tr', {'data-source-ip': s.source_ip},
        sourceCell(state, s),
        el('td', {class: 'num'}, kNumber.format(messages)),
        el('td', {class: 'num fail'}, kNumber.format(s.dmarc_fail)),
        el('td', {class: 'wide-only'}, rateBar(Number(s.dmarc_pass) || 0, messages)),
        el('td', {class: 'wide-only'}, textList(s.header_from, 3)));
  }

  // With one domain chosen, the policy it publishes now beside what p=reject
  // would block: the two figures a move to reject is decided on.
  async function renderOverviewPolicy(state) {
    const card = $('summary-policy-card');
    const value = $('summary-policy');
    clear(value);
    show(card, false);
    if (!state.domain) return;
    let page;
    try {
      page = await api('policy', {domain: state.domain, limit: '1000'});
    } catch (err) {
      if (err instanceof ApiError && err.unavailable) return;
      throw err;
    }
    const latest = latestPolicy(items(page));
    if (!latest) return;
    value.append(policyBadge(latest.p));
    const pct = latest.pct === null || latest.pct === undefined ? 100 : latest.pct;
    $('summary-policy-note').textContent = `pct=${pct}` + (latest.testing === 'y' ? ', t=y' : '');
    show(card, true);
  }

  async function renderOverview(state) {
    renderRangeLabel(state);
    const range = apiRange(state);
    $('all-sources-link').setAttribute('href', viewHash('sources', state, {result: 'fail'}));
    const tasks = [
      api('summary', range).then(renderSummary),
      renderTrend(state),
      renderOverviewPolicy(state),
      api('reports', {...range, limit: '1'}).then((page) => {
        $('summary-reports-note').textContent = `in ${count(page.total, 'report')}`;
      }),
      fillTable({
        path: 'sources',
        params: {...range, result: 'fail', sort: 'failing', limit: String(kTopSources)},
        table: $('top-sources'), empty: $('top-sources-empty'),
        row: (s) => topSourceRow(state, s),
      }),
    ];
    // Each part shows its own error; one failing endpoint leaves the others up.
    const results = await Promise.allSettled(tasks);
    for (const result of results) {
      if (result.status === 'rejected') reportError(result.reason);
    }
  }

  // ---- sources ----

  function dispositionCell(d) {
    const parts = [];
    for (const kind of ['quarantine', 'reject']) {
      const n = Number((d || {})[kind]) || 0;
      if (n > 0) parts.push(el('span', {class: 'badge ' + (kind === 'reject' ? 'bad' : 'warn')},
                               `${kind} ${kNumber.format(n)}`));
    }
    if (parts.length === 0) return el('td', {class: 'muted'}, 'none');
    // The flex box sits inside the cell: a flex <td> leaves the table's row.
    return el('td', {}, el('div', {class: 'badges'}, ...parts));
  }

  function sourceRow(state, s) {
    const messages = Number(s.messages) || 0;
    const domains_cell = el('td', {class: 'small'},
        el('div', {}, el('span', {class: 'muted'}, 'DKIM: '),
           (s.dkim_domains || []).length ? s.dkim_domains.join(', ') : '–'),
        el('div', {}, el('span', {class: 'muted'}, 'SPF: '),
           (s.spf_domains || []).length ? s.spf_domains.join(', ') : '–'));
    return el('tr', {'data-source-ip': s.source_ip},
        sourceCell(state, s),
        el('td', {class: 'num'}, kNumber.format(messages)),
        el('td', {class: 'num' + (Number(s.dmarc_fail) > 0 ? ' fail' : '')},
           kNumber.format(s.dmarc_fail)),
        el('td', {}, rateBar(Number(s.dmarc_pass) || 0, messages)),
        el('td', {class: 'num'}, kNumber.format(s.fail_both)),
        dispositionCell(s.disposition),
        el('td', {class: 'small'}, textList(s.header_from, 4)),
        domains_cell,
        el('td', {class: 'num'}, kNumber.format(s.reports)),
        el('td', {class: 'nowrap'}, localTime(s.last_seen)));
  }

  async function renderSources(state) {
    const extra = (more) => ({
      result: state.result === 'all' ? '' : state.result,
      sort: state.sort === 'failing' ? '' : state.sort, ...more,
    });
    for (const link of document.querySelectorAll('#view-sources [data-result]')) {
      const value = link.dataset.result;
      link.setAttribute('href', viewHash('sources', state, extra({result: value === 'all' ?
          '' : value})));
      setActive(link, value === state.result);
    }
    $('sources-sort').value = state.sort;
    const params = {...apiRange(state), result: state.result, sort: state.sort};
    csvLink($('sources-csv'), 'sources', params);
    const page = await fillTable({
      path: 'sources',
      params: {...params, limit: String(kPageSize), offset: String(state.offset)},
      table: $('sources'), empty: $('sources-empty'), count: $('sources-count'),
      row: (s) => sourceRow(state, s),
    });
    renderPager($('sources-pager'), state.offset, items(page).length, page ? page.total : 0,
                kPageSize, (offset) => viewHash('sources', state, extra({offset})));
  }

  function reportLinkCell(state, rec) {
    return el('td', {},
        el('a', {href: viewHash('report', state, {}, rec.report_id)},
           rec.org_name || '(no organisation name)'),
        el('div', {class: 'muted small mono id'}, rec.report));
  }

  function sourceRecordRow(state, rec) {
    return el('tr', {'data-report-id': String(rec.report_id)},
        reportLinkCell(state, rec),
        el('td', {class: 'nowrap'}, period(rec.begin, rec.end)),
        el('td', {class: 'num'}, kNumber.format(rec.count)),
        el('td', {}, dispositionBadge(rec.disposition)),
        el('td', {}, resultBadge(rec.policy_dkim)),
        el('td', {}, resultBadge(rec.policy_spf)),
        el('td', {}, identifiers(rec)),
        el('td', {}, dkimList(rec.dkim)),
        el('td', {}, spfList(rec.spf)));
  }

  async function renderSource(state) {
    const ip = state.id;
    $('source-back').setAttribute('href', viewHash('sources', state));
    $('source-title').textContent = `Source ${ip}`;
    renderSourceCards(null);
    const range = apiRange(state);
    const records_path = `sources/${encodeURIComponent(ip)}/records`;
    csvLink($('source-records-csv'), records_path, range);
    const tasks = [
      fillTable({
        path: records_path,
        params: {...range, limit: String(kPageSize), offset: String(state.offset)},
        table: $('source-records'), empty: $('source-records-empty'),
        count: $('source-records-count'), row: (rec) => sourceRecordRow(state, rec),
      }).then((page) => renderPager($('source-records-pager'), state.offset, items(page).length,
                                    page ? page.total : 0, kPageSize,
                                    (offset) => viewHash('source', state, {offset}, ip))),
      fillTable({
        path: 'reports', params: {...range, source_ip: ip, limit: String(kPageSize)},
        table: $('source-reports'), empty: $('source-reports-empty'),
        count: $('source-reports-count'), row: (r) => reportRow(state, r),
      }),
    ];
    const results = await Promise.allSettled(tasks);
    for (const result of results) {
      if (result.status === 'rejected') reportError(result.reason);
    }
    renderSourceCards(await sourceFigures(state, ip));
  }

  // The source's row as the sources list gave it: remembered from the list
  // the drill-down was opened from, else looked up among the sources with
  // the most failures.
  // TODO(#5): the API has no route for one source's figures, so a bookmarked
  // drill-down of a source outside the first 1000 shows its records only.
  async function sourceFigures(state, ip) {
    const known = source_rows.get(sourceKey(state, ip));
    if (known) return known;
    const page = await api('sources', {...apiRange(state), limit: '1000'}).catch(() => null);
    return items(page).find((s) => s.source_ip === ip) || null;
  }

  function renderSourceCards(row) {
    const box = $('source-cards');
    clear(box);
    show(box, Boolean(row));
    if (!row) return;
    const messages = Number(row.messages) || 0;
    const card = (label, value, note, extra) => el('div', {class: 'card' + (extra || '')},
        el('div', {class: 'card-label'}, label),
        el('div', {class: 'card-value'}, value),
        note ? el('div', {class: 'card-note'}, note) : null);
    box.append(
        card('Reverse DNS', row.reverse_dns || '—', row.reverse_dns ? null : 'not looked up',
             ' card-text'),
        card('Messages', kNumber.format(messages), `in ${count(row.reports, 'report')}`),
        card('DMARC pass rate', percent(row.dmarc_pass, messages),
             `${kNumber.format(row.dmarc_fail)} failing`),
        card('Aligned with neither', kNumber.format(row.fail_both), 'DKIM nor SPF',
             Number(row.fail_both) > 0 ? ' card-warn' : ''),
        card('Header From', textList(row.header_from, 3), null, ' card-text'));
  }

  // ---- reporters ----

  function reporterRow(r) {
    const messages = Number(r.messages) || 0;
    return el('tr', {'data-reporter': r.reporter_key},
        el('td', {}, r.org_name || '(no organisation name)',
           r.reporter_key && r.reporter_key !== r.org_name ?
               el('div', {class: 'muted small'}, r.reporter_key) : null),
        el('td', {class: 'num'}, kNumber.format(r.reports)),
        el('td', {class: 'num'}, kNumber.format(messages)),
        el('td', {class: 'num'}, kNumber.format(r.dmarc_pass)),
        el('td', {class: 'num' + (Number(r.dmarc_fail) > 0 ? ' fail' : '')},
           kNumber.format(r.dmarc_fail)),
        el('td', {}, rateBar(Number(r.dmarc_pass) || 0, messages)),
        el('td', {class: 'nowrap'}, localTime(r.first_seen)),
        el('td', {class: 'nowrap'}, localTime(r.last_seen)));
  }

  async function renderReporters(state) {
    const range = apiRange(state);
    csvLink($('reporters-csv'), 'reporters', range);
    const page = await fillTable({
      path: 'reporters', params: {...range, limit: String(kPageSize), offset: String(state.offset)},
      table: $('reporters'), empty: $('reporters-empty'), count: $('reporters-count'),
      row: reporterRow,
    });
    renderPager($('reporters-pager'), state.offset, items(page).length, page ? page.total : 0,
                kPageSize, (offset) => viewHash('reporters', state, {offset}));
  }

  // ---- reports ----

  function reportRow(state, r) {
    const link = el('a', {href: viewHash('report', state, {}, r.id)},
                    r.org_name || '(no organisation name)');
    const warnings = Array.isArray(r.warnings) ? r.warnings : [];
    return el('tr', {'data-report-id': String(r.id)},
        el('td', {}, link, r.org_email ? el('div', {class: 'muted small'}, r.org_email) : null),
        el('td', {class: 'mono id'}, r.report_id),
        el('td', {class: 'id'}, r.domain),
        el('td', {class: 'nowrap', title: `${localTime(r.begin)} – ${localTime(r.end)} ${kZone}`},
           period(r.begin, r.end)),
        el('td', {class: 'num'}, kNumber.format(r.records)),
        el('td', {class: 'num'}, kNumber.format(r.messages)),
        el('td', {class: 'small'}, warnings.length ? warnings.join('; ') : ''));
  }

  function renderRejected(page) {
    const list = items(page);
    const tbody = $('rejected').querySelector('tbody');
    clear(tbody);
    for (const r of list) {
      const origin =
          r.origin && r.origin !== r.name ? el('div', {class: 'muted small'}, r.origin) : null;
      tbody.append(el('tr', {},
          el('td', {class: 'nowrap'}, localTime(r.received_at)),
          el('td', {class: 'mono small'}, el('div', {class: 'rejected-name'}, r.name), origin),
          el('td', {},
              el('span', {class: 'badge bad'}, r.code), r.recovered ? ' (recovered)' : '',
              el('div', {class: 'small'}, r.message)),
          el('td', {class: 'num'}, kNumber.format(r.size))));
    }
    $('rejected-count').textContent = `(${kNumber.format(Number(page.total) || 0)})`;
    show($('rejected-empty'), list.length === 0);
    show($('rejected').parentElement, list.length > 0);
  }

  async function renderReports(state) {
    const range = apiRange(state);
    csvLink($('reports-csv'), 'reports', range);
    const tasks = [
      fillTable({
        path: 'reports', params: {...range, limit: String(kPageSize), offset: String(state.offset)},
        table: $('reports'), empty: $('reports-empty'), count: $('reports-count'),
        row: (r) => reportRow(state, r),
      }).then((page) => renderPager($('reports-pager'), state.offset, items(page).length,
                                    page ? page.total : 0, kPageSize,
                                    (offset) => viewHash('reports', state, {offset}))),
      api('rejected', {limit: '50'}).then(renderRejected),
    ];
    const results = await Promise.allSettled(tasks);
    for (const result of results) {
      if (result.status === 'rejected') reportError(result.reason);
    }
  }

  // ---- report detail ----

  function fact(dl, name, value) {
    const text = value === null || value === undefined || value === '' ? '–' : String(value);
    dl.append(el('div', {}, el('dt', {}, name), el('dd', {}, text)));
  }

  function recordRow(state, rec) {
    const reasons = (Array.isArray(rec.reasons) ? rec.reasons : [])
        .map((x) => [x.type, x.comment].filter(Boolean).join(': '))
        .join('; ');
    return el('tr', {},
        el('td', {}, el('a', {class: 'mono', href: viewHash('source', state, {}, rec.source_ip)},
                        rec.source_ip)),
        el('td', {class: 'num'}, kNumber.format(rec.count)),
        el('td', {}, dispositionBadge(rec.disposition)),
        el('td', {}, resultBadge(rec.dmarc)),
        el('td', {}, resultBadge(rec.policy_dkim)),
        el('td', {}, resultBadge(rec.policy_spf)),
        el('td', {}, identifiers(rec)),
        el('td', {}, dkimList(rec.dkim)),
        el('td', {}, spfList(rec.spf)),
        el('td', {class: 'small'}, reasons));
  }

  // The raw link is offered only when the server kept the envelope.
  async function renderRawLink(id) {
    const link = $('detail-raw');
    const url = `api/v1/reports/${encodeURIComponent(id)}/raw`;
    show(link, false);
    try {
      const response = await fetch(url, {method: 'HEAD'});
      if (!response.ok) return;
    } catch (err) {
      return;
    }
    link.setAttribute('href', url);
    show(link, true);
  }

  async function renderReport(state) {
    $('back-link').setAttribute('href', viewHash('reports', state));
    $('detail-title').textContent = `Report ${state.id}`;
    const report_dl = $('detail-report');
    const policy_dl = $('detail-policy');
    const tbody = $('records').querySelector('tbody');
    clear(report_dl);
    clear(policy_dl);
    clear(tbody);
    clear($('records-pager'));
    $('detail-records-count').textContent = '';
    const raw = renderRawLink(state.id);

    let r;
    try {
      r = await api('reports/' + encodeURIComponent(state.id),
                    {limit: String(kRecordPageSize), offset: String(state.offset)});
    } catch (err) {
      reportError(err);
      await raw;
      return;
    }
    $('detail-title').textContent = `${r.org_name || '(no organisation name)'}: ${r.report_id}`;
    fact(report_dl, 'Reporter', r.org_name);
    fact(report_dl, 'Contact', r.org_email);
    fact(report_dl, 'Report ID', r.report_id);
    fact(report_dl, 'Domain', r.domain);
    fact(report_dl, 'Period (UTC)', period(r.begin, r.end));
    fact(report_dl, `Period (${kZone})`, `${localTime(r.begin)} – ${localTime(r.end)}`);
    fact(report_dl, 'Messages', kNumber.format(r.messages));
    fact(report_dl, `Received (${kZone})`, localTime(r.received_at));
    const meta = r.metadata || {};
    fact(report_dl, 'Format version', meta.version);
    fact(report_dl, 'Generator', meta.generator);
    if (meta.extra_contact_info) fact(report_dl, 'Extra contact', meta.extra_contact_info);
    const problems = [...(Array.isArray(meta.errors) ? meta.errors : []),
                      ...(Array.isArray(r.warnings) ? r.warnings : [])];
    if (problems.length) fact(report_dl, 'Reporter errors / warnings', problems.join('; '));

    const p = r.policy_published || {};
    fact(policy_dl, 'Domain', p.domain);
    fact(policy_dl, 'Policy (p)', p.p);
    fact(policy_dl, 'Subdomain policy (sp)', p.sp);
    fact(policy_dl, 'Non-existent subdomains (np)', p.np);
    fact(policy_dl, 'DKIM alignment (adkim)', p.adkim);
    fact(policy_dl, 'SPF alignment (aspf)', p.aspf);
    fact(policy_dl, 'Percentage (pct)', p.pct);
    fact(policy_dl, 'Failure options (fo)', p.fo);
    fact(policy_dl, 'Testing (t)', p.testing);
    fact(policy_dl, 'Discovery', p.discovery_method);

    const records = Array.isArray(r.records) ? r.records : [];
    for (const rec of records) tbody.append(recordRow(state, rec));
    // Most reporters never give override reasons (RFC 7489 section 6.6.2 lets
    // a receiver deviate); drop the column rather than show a row of dashes.
    const any_reasons = records.some((rec) => Array.isArray(rec.reasons) && rec.reasons.length);
    $('records').classList.toggle('no-reasons', !any_reasons);
    const total = Number(r.records_total ?? records.length) || 0;
    $('detail-records-count').textContent = `(${kNumber.format(total)})`;
    renderPager($('records-pager'), state.offset, records.length, total, kRecordPageSize,
                (offset) => viewHash('report', state, {offset}, state.id));
    await raw;
  }

  // ---- policy history ----

  function policyRow(p) {
    const text = (value) => (value === null || value === undefined || value === '' ?
        el('span', {class: 'muted'}, '–') : String(value));
    return el('tr', {},
        el('td', {}, policyBadge(p.p)),
        el('td', {}, policyBadge(p.sp)),
        el('td', {}, policyBadge(p.np)),
        el('td', {}, text(p.adkim)),
        el('td', {}, text(p.aspf)),
        el('td', {class: 'num'}, text(p.pct)),
        el('td', {}, text(p.fo)),
        el('td', {}, text(p.testing)),
        el('td', {class: 'num'}, kNumber.format(p.reports)),
        el('td', {class: 'nowrap'}, localTime(p.first_seen)),
        el('td', {class: 'nowrap'}, localTime(p.last_seen)));
  }

  // The policy the newest reports saw (RFC 7489 section 7.2.1.1).
  function latestPolicy(list) {
    return list.reduce((a, b) => (!a || String(b.last_seen) > String(a.last_seen) ? b : a), null);
  }

  function renderCurrentPolicy(list) {
    const box = $('policy-current');
    clear(box);
    const latest = latestPolicy(list);
    show(box, Boolean(latest));
    if (!latest) return;
    const card = (label, value, note) => el('div', {class: 'card'},
        el('div', {class: 'card-label'}, label),
        el('div', {class: 'card-value'}, value),
        note ? el('div', {class: 'card-note'}, note) : null);
    box.append(
        card('Latest policy seen', policyBadge(latest.p), `until ${localTime(latest.last_seen)}`),
        card('Subdomains (sp)', policyBadge(latest.sp ?? latest.p),
             latest.sp ? null : 'inherits p'),
        card('Applied to (pct)', `${latest.pct ?? 100} %`, latest.testing === 'y' ?
             'testing (t=y)' : null),
        card('Distinct records seen', kNumber.format(list.length)));
  }

  async function renderPolicy(state) {
    $('policy-domain').textContent = state.domain ? `(${state.domain})` : '';
    show($('policy-pick'), !state.domain);
    show($('policy-csv'), Boolean(state.domain));
    if (!state.domain) {
      show($('policy-box'), false);
      show($('policy-current'), false);
      setEmpty($('policy-empty'), false);
      return;
    }
    csvLink($('policy-csv'), 'policy', {domain: state.domain});
    const page = await fillTable({
      path: 'policy', params: {domain: state.domain, limit: '1000'},
      table: $('policy'), empty: $('policy-empty'), row: policyRow,
    });
    renderCurrentPolicy(items(page));
  }

  // ---- failure reports ----

  // What failed, in RFC 6591 / RFC 9991 words: the Auth-Failure values, then
  // the identifiers that did align (Identity-Alignment) when the reporter said.
  function whatFailed(f) {
    const failures = Array.isArray(f.auth_failure) ? f.auth_failure : [];
    const aligned = Array.isArray(f.identity_alignment) ? f.identity_alignment : [];
    let text = failures.length ? failures.join(', ') : '–';
    if (aligned.length) text += ` (aligned: ${aligned.join(', ')})`;
    return text;
  }

  function failureRow(state, f) {
    const link = el('a', {href: viewHash('failure', state, {}, f.id)}, localTime(f.arrived_at));
    return el('tr', {'data-failure-id': String(f.id)},
        el('td', {class: 'nowrap'}, link),
        el('td', {class: 'mono'}, f.source_ip || '–'),
        el('td', {}, whatFailed(f)),
        el('td', {class: 'small'}, f.from || '–'),
        el('td', {class: 'small'}, f.subject || '–'));
  }

  async function renderFailures(state) {
    const range = apiRange(state);
    csvLink($('failures-csv'), 'failure-reports', range);
    const page = await fillTable({
      path: 'failure-reports',
      params: {...range, limit: String(kPageSize), offset: String(state.offset)},
      table: $('failure-reports'), empty: $('failures-empty'), count: $('failures-count'),
      row: (f) => failureRow(state, f),
    });
    renderPager($('failures-pager'), state.offset, items(page).length, page ? page.total : 0,
                kPageSize, (offset) => viewHash('failures', state, {offset}));
  }

  function list(values) {
    return Array.isArray(values) && values.length ? values.join(', ') : null;
  }

  async function renderFailure(state) {
    $('failure-back-link').setAttribute('href', viewHash('failures', state));
    $('failure-title').textContent = `Failure report ${state.id}`;
    const facts = $('failure-facts');
    const message = $('failure-message');
    clear(facts);
    clear(message);
    $('failure-fields').textContent = '';
    $('failure-headers').textContent = '';
    $('failure-sample').textContent = '';

    let f;
    try {
      f = await api('failure-reports/' + encodeURIComponent(state.id));
    } catch (err) {
      reportError(err);
      return;
    }
    $('failure-title').textContent = `Failure report ${f.id}: ${f.domain || '(no domain)'} ` +
        `from ${f.source_ip || 'an unknown source'}`;
    fact(facts, 'Domain', f.domain);
    fact(facts, `Arrived (${kZone})`, localTime(f.arrived_at));
    fact(facts, 'Arrival-Date as sent', f.arrival_date_text);
    fact(facts, 'Source IP', f.source_ip && f.source_ip_comment ?
        `${f.source_ip} (${f.source_ip_comment})` : f.source_ip);
    fact(facts, 'What failed (Auth-Failure)', list(f.auth_failure));
    fact(facts, 'Identity-Alignment', list(f.identity_alignment));
    fact(facts, 'Delivery-Result', f.delivery_result);
    fact(facts, 'Authentication-Results', list(f.authentication_results));
    fact(facts, 'Reported-Domain', list(f.reported_domain));
    fact(facts, 'Original-Mail-From', f.original_mail_from);
    fact(facts, 'Original-Rcpt-To', list(f.original_rcpt_to));
    fact(facts, 'Original-Envelope-Id', f.original_envelope_id);
    fact(facts, 'Reporting-MTA', f.reporting_mta);
    fact(facts, 'Incidents', f.incidents);
    fact(facts, 'DKIM domain / selector / identity',
        [f.dkim_domain, f.dkim_selector, f.dkim_identity].filter(Boolean).join(' / '));
    fact(facts, 'SPF-DNS', f.spf_dns);
    fact(facts, 'Feedback-Type', f.feedback_type);
    fact(facts, 'User-Agent', f.user_agent);
    fact(facts, 'Version', f.version);
    fact(facts, 'Format', f.format === 'arf' ? 'ARF' : 'not ARF (read as far as possible)');
    fact(facts, `Received (${kZone})`, localTime(f.received_at));
    fact(facts, 'Origin', f.origin);
    if (Array.isArray(f.warnings) && f.warnings.length) {
      fact(facts, 'Warnings', f.warnings.join('; '));
    }

    fact(message, 'From', f.from);
    fact(message, 'To', f.to);
    fact(message, 'Subject', f.subject);
    fact(message, 'Date', f.date);
    fact(message, 'Message-ID', f.message_id);
    fact(message, 'Returned as', f.returned_part_type);

    $('failure-fields').textContent = Array.isArray(f.fields) ? f.fields.join('\n') : '';
    $('failure-headers').textContent = f.headers || '';
    const redacted = f.local_parts_redacted ? ', local parts redacted' : '';
    $('failure-sample').textContent = `(kept: ${f.sample_kept}${redacted})`;
  }

  // ---- routing ----

  const kRenderers = {
    overview: renderOverview, sources: renderSources, source: renderSource,
    reporters: renderReporters, reports: renderReports, report: renderReport,
    policy: renderPolicy, failures: renderFailures, failure: renderFailure,
  };

  let render_serial = 0;

  async function render() {
    const serial = ++render_serial;
    document.body.dataset.ready = 'false';
    clear($('errors'));
    const state = parseHash();
    try {
      await domains_loaded;
    } catch (err) {
      // Shown on every view; the views below still try their own requests.
      reportError(err);
    }
    if (serial !== render_serial) return;
    syncForm(state);
    for (const view of document.querySelectorAll('main.view')) {
      show(view, view.dataset.view === state.view);
    }
    document.body.dataset.view = state.view;
    try {
      await kRenderers[state.view](state);
    } catch (err) {
      reportError(err);
    }
    // Lets a reader (or a test) know which view has settled.
    if (serial === render_serial) {
      document.body.dataset.rendered = location.hash;
      document.body.dataset.ready = 'true';
    }
  }

  function start() {
    $('zone-label').textContent = kZone;
    for (const node of document.querySelectorAll('.tz')) node.textContent = `(${kZone})`;
    wireFilters();
    domains_loaded = loadDomains();
    window.addEventListener('hashchange', render);
    render();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
