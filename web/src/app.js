// dmarcd dashboard. Reads only the REST API under api/v1/ (relative URLs, so the
// dashboard works behind a reverse proxy that mounts dmarcd under a prefix).
//
// Every string that comes from a report is untrusted: reporters choose their
// org_name, report ids, selectors and comments. Text only ever reaches the page
// through textContent / createTextNode (the el() function below); nothing built
// from data is ever assigned to innerHTML.
//
// The view lives in the URL fragment so it can be bookmarked and reloaded:
//   #/?domain=example.com&from=2025-01-01&to=2025-01-31&offset=100
//   #/reports/42?domain=example.com       (detail view; filters kept for "back")
//   #/failure-reports/7?domain=example.com (a failure report, every field and its kept headers)
// "to" in the URL and the form is the last day shown (inclusive); the API's
// "to" is exclusive, so requests send the day after.
'use strict';

(() => {
  const kPageSize = 50;
  const kNumber = new Intl.NumberFormat('en-US');
  const kPercent = new Intl.NumberFormat('en-US', {minimumFractionDigits: 1, maximumFractionDigits: 1});

  const $ = (id) => document.getElementById(id);

  let domains = [];
  let chart = null;
  let domains_loaded = null;

  // ---- building the DOM: text only ----

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key === 'href') node.setAttribute('href', value);
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

  // ---- URL state ----

  function parseHash() {
    const hash = location.hash.replace(/^#/, '') || '/';
    const q = hash.indexOf('?');
    const path = q < 0 ? hash : hash.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : hash.slice(q + 1));
    const match = /^\/reports\/(\d+)$/.exec(path);
    const failure = /^\/failure-reports\/(\d+)$/.exec(path);
    const isDay = (s) => /^\d{4}-\d{2}-\d{2}$/.test(s || '');
    return {
      report: match ? match[1] : null,
      failure: failure ? failure[1] : null,
      domain: params.get('domain') || '',
      from: isDay(params.get('from')) ? params.get('from') : '',
      to: isDay(params.get('to')) ? params.get('to') : '',
      offset: Math.max(0, parseInt(params.get('offset') || '0', 10) || 0),
    };
  }

  function filterQuery(state, extra) {
    const params = new URLSearchParams();
    if (state.domain) params.set('domain', state.domain);
    if (state.from) params.set('from', state.from);
    if (state.to) params.set('to', state.to);
    for (const [key, value] of Object.entries(extra || {})) {
      if (value) params.set(key, value);
    }
    return params.toString();
  }

  function overviewHash(state, offset) {
    const query = filterQuery(state, {offset: offset ? String(offset) : ''});
    return '#/' + (query ? '?' + query : '');
  }

  function reportHash(state, id) {
    const query = filterQuery(state);
    return '#/reports/' + encodeURIComponent(id) + (query ? '?' + query : '');
  }

  function failureHash(state, id) {
    const query = filterQuery(state);
    return '#/failure-reports/' + encodeURIComponent(id) + (query ? '?' + query : '');
  }

  function navigate(hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  }

  // ---- dates ----

  function nextDay(day) {
    const d = new Date(day + 'T00:00:00Z');
    d.setUTCDate(d.getUTCDate() + 1);
    return d.toISOString().slice(0, 10);
  }

  function addDays(day, n) {
    const d = new Date(day + 'T00:00:00Z');
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  // "2025-01-01T00:00:00Z" -> "2025-01-01 00:00"
  function shortTime(iso) {
    if (typeof iso !== 'string') return '–';
    return iso.replace('T', ' ').replace(/:00Z$/, '').replace(/Z$/, '');
  }

  // A report's date range as days when it covers whole UTC days (nearly all
  // do; many reporters end at 23:59:59 instead of the next midnight, RFC 7489
  // Appendix C leaves that open), else as times.
  function period(begin, end) {
    if (typeof begin !== 'string' || typeof end !== 'string') return '–';
    const midnight = /T00:00:00Z$/;
    if (!midnight.test(begin) || !/T(00:00:00|23:59:59)Z$/.test(end)) {
      return `${shortTime(begin)} – ${shortTime(end)}`;
    }
    const first = begin.slice(0, 10);
    const last = new Date(Date.parse(end) - 1000).toISOString().slice(0, 10);
    return last <= first ? first : `${first} – ${last}`;
  }

  function apiRange(state) {
    const params = {};
    if (state.domain) params.domain = state.domain;
    if (state.from) params.from = state.from;
    if (state.to) params.to = nextDay(state.to);
    return params;
  }

  // ---- API ----

  class ApiError extends Error {}

  async function api(path, params) {
    const query = new URLSearchParams(params || {}).toString();
    const url = 'api/v1/' + path + (query ? '?' + query : '');
    let response;
    try {
      response = await fetch(url, {headers: {Accept: 'application/json'}});
    } catch (err) {
      throw new ApiError(`Cannot reach dmarcd (${url}): ${err.message}`);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      if (response.ok) throw new ApiError(`${url}: the answer is not JSON (${err.message})`);
    }
    if (!response.ok) {
      const error = body && body.error ? body.error : {};
      const code = error.code || String(response.status);
      const message = error.message || response.statusText || 'request failed';
      throw new ApiError(`${url}: ${code}: ${message}`);
    }
    return body;
  }

  function reportError(err) {
    const text = err instanceof ApiError ? err.message : `Unexpected error: ${err && err.message}`;
    $('errors').append(el('p', {class: 'error'}, text));
    console.error(err);
  }

  function clearErrors() {
    clear($('errors'));
  }

  // ---- filters ----

  async function loadDomains() {
    const body = await api('domains');
    domains = Array.isArray(body.items) ? body.items : [];
    const select = $('domain');
    while (select.options.length > 1) select.remove(1);
    for (const d of domains) {
      select.append(el('option', {value: d.domain}, d.domain));
    }
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
  }

  // Presets end at the newest data of the chosen domain (or of all domains),
  // not at today: an archive imported once still shows its last weeks, and
  // for a domain that receives reports daily the two are the same.
  function presetEnd(state) {
    const rows = state.domain ? domains.filter((d) => d.domain === state.domain) : domains;
    let last = '';
    for (const row of rows) {
      if (typeof row.last !== 'string') continue;
      // "last" is the exclusive end of the newest report; its last day is the
      // day of the instant just before it.
      const day = new Date(Date.parse(row.last) - 1000).toISOString().slice(0, 10);
      if (day > last) last = day;
    }
    return last || new Date().toISOString().slice(0, 10);
  }

  function wireFilters() {
    const form = $('filters');
    form.addEventListener('submit', (event) => event.preventDefault());
    form.addEventListener('change', () => {
      const state = parseHash();
      state.domain = $('domain').value;
      state.from = $('from').value;
      state.to = $('to').value;
      navigate(overviewHash(state, 0));
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
        navigate(overviewHash(state, 0));
      });
    }
    $('prev-page').addEventListener('click', () => {
      const state = parseHash();
      navigate(overviewHash(state, Math.max(0, state.offset - kPageSize)));
    });
    $('next-page').addEventListener('click', () => {
      const state = parseHash();
      navigate(overviewHash(state, state.offset + kPageSize));
    });
  }

  // ---- overview ----

  function setFigure(id, value, text) {
    const node = $(id);
    node.textContent = text;
    node.dataset.value = value === null ? '' : String(value);
  }

  function percent(part, whole) {
    return whole > 0 ? kPercent.format((100 * part) / whole) + ' %' : '–';
  }

  function renderSummary(s) {
    const messages = Number(s.messages) || 0;
    setFigure('summary-messages', messages, kNumber.format(messages));
    setFigure('summary-pass-rate', s.dmarc_pass, percent(s.dmarc_pass, messages));
    $('summary-pass-note').textContent =
        `${kNumber.format(s.dmarc_pass)} pass · ${kNumber.format(s.dmarc_fail)} fail`;
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

  function renderChart(series) {
    const items = Array.isArray(series.items) ? series.items : [];
    const labels = items.map((d) => d.date);
    const pass = items.map((d) => Number(d.dmarc_pass) || 0);
    const fail = items.map((d) => Number(d.dmarc_fail) || 0);
    show($('trend-empty'), items.length === 0);
    if (typeof window.Chart !== 'function') {
      throw new ApiError('The chart library did not load (vendor/chart.umd.js).');
    }
    if (chart) {
      chart.data.labels = labels;
      chart.data.datasets[0].data = pass;
      chart.data.datasets[1].data = fail;
      chart.update();
      return;
    }
    chart = new window.Chart($('trend-chart'), {
      type: 'bar',
      data: {
        labels,
        datasets: [
          {label: 'DMARC pass', data: pass, backgroundColor: '#2f9e6e', stack: 'dmarc', maxBarThickness: 56},
          {label: 'DMARC fail', data: fail, backgroundColor: '#d9534f', stack: 'dmarc', maxBarThickness: 56},
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: {mode: 'index', intersect: false},
        scales: {
          x: {stacked: true, ticks: {autoSkip: true, maxRotation: 0}},
          y: {stacked: true, beginAtZero: true, ticks: {precision: 0}},
        },
        plugins: {legend: {position: 'bottom'}},
      },
    });
  }

  function reportRow(state, r) {
    const link = el('a', {href: reportHash(state, r.id)}, r.org_name || '(no organisation name)');
    const warnings = Array.isArray(r.warnings) ? r.warnings : [];
    return el('tr', {'data-report-id': String(r.id)},
        el('td', {}, link, r.org_email ? el('div', {class: 'muted small'}, r.org_email) : null),
        el('td', {class: 'mono id'}, r.report_id),
        el('td', {}, r.domain),
        el('td', {class: 'nowrap', title: `${shortTime(r.begin)} – ${shortTime(r.end)} UTC`},
            period(r.begin, r.end)),
        el('td', {class: 'num'}, kNumber.format(r.records)),
        el('td', {class: 'num'}, kNumber.format(r.messages)),
        el('td', {class: 'small'}, warnings.length ? warnings.join('; ') : ''));
  }

  function renderReports(state, page) {
    const items = Array.isArray(page.items) ? page.items : [];
    const tbody = $('reports').querySelector('tbody');
    clear(tbody);
    for (const r of items) tbody.append(reportRow(state, r));
    const total = Number(page.total) || 0;
    show($('reports-empty'), items.length === 0);
    show($('reports').parentElement, items.length > 0);
    show($('reports-pager'), total > items.length || state.offset > 0);
    $('reports-count').textContent = `(${kNumber.format(total)})`;
    const first = items.length ? state.offset + 1 : 0;
    $('page-label').textContent =
        `${kNumber.format(first)}–${kNumber.format(state.offset + items.length)} of ${kNumber.format(total)}`;
    $('prev-page').disabled = state.offset === 0;
    $('next-page').disabled = state.offset + items.length >= total;
  }

  function renderRejected(page) {
    const items = Array.isArray(page.items) ? page.items : [];
    const tbody = $('rejected').querySelector('tbody');
    clear(tbody);
    for (const r of items) {
      const origin = r.origin && r.origin !== r.name ? el('div', {class: 'muted small'}, r.origin) : null;
      tbody.append(el('tr', {},
          el('td', {class: 'nowrap'}, shortTime(r.received_at)),
          el('td', {class: 'mono small'}, el('div', {class: 'rejected-name'}, r.name), origin),
          el('td', {},
              el('span', {class: 'badge bad'}, r.code), r.recovered ? ' (recovered)' : '',
              el('div', {class: 'small'}, r.message)),
          el('td', {class: 'num'}, kNumber.format(r.size))));
    }
    $('rejected-count').textContent = `(${kNumber.format(Number(page.total) || 0)})`;
    show($('rejected-empty'), items.length === 0);
    show($('rejected').parentElement, items.length > 0);
  }

  // What failed, in RFC 6591 / RFC 9991 words: the Auth-Failure values, then
  // the identifiers that did align (Identity-Alignment) when the reporter said.
  function whatFailed(f) {
    const failures = Array.isArray(f.auth_failure) ? f.auth_failure : [];
    const aligned = Array.isArray(f.identity_alignment) ? f.identity_alignment : [];
    let text = failures.length ? failures.join(', ') : '–';
    if (aligned.length) text += ` (aligned: ${aligned.join(', ')})`;
    return text;
  }

  function renderFailures(state, page) {
    const items = Array.isArray(page.items) ? page.items : [];
    const tbody = $('failure-reports').querySelector('tbody');
    clear(tbody);
    for (const f of items) {
      const link = el('a', {href: failureHash(state, f.id)}, shortTime(f.arrived_at));
      tbody.append(el('tr', {'data-failure-id': String(f.id)},
          el('td', {class: 'nowrap'}, link),
          el('td', {class: 'mono'}, f.source_ip || '–'),
          el('td', {}, whatFailed(f)),
          el('td', {class: 'small'}, f.from || '–'),
          el('td', {class: 'small'}, f.subject || '–')));
    }
    $('failures-count').textContent = `(${kNumber.format(Number(page.total) || 0)})`;
    show($('failures-empty'), items.length === 0);
    show($('failure-reports').parentElement, items.length > 0);
  }

  async function renderOverview(state) {
    renderRangeLabel(state);
    const range = apiRange(state);
    const tasks = [
      api('summary', range).then(renderSummary),
      api('timeseries', range).then(renderChart),
      api('reports', {...range, limit: String(kPageSize), offset: String(state.offset)})
          .then((page) => renderReports(state, page)),
      api('rejected', {limit: '50'}).then(renderRejected),
      api('failure-reports', {...range, limit: String(kPageSize)})
          .then((page) => renderFailures(state, page)),
    ];
    // Each part shows its own error; one failing endpoint leaves the others up.
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

  function resultBadge(value) {
    const text = value === null || value === undefined ? '–' : String(value);
    const kind = text === 'pass' ? 'good' : (text === 'fail' || text === 'softfail' ||
        text === 'permerror' || text === 'temperror' ? 'bad' : 'neutral');
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

  function identifiers(rec) {
    const list = el('ul', {class: 'auth'});
    for (const [name, value] of [['header', rec.header_from], ['envelope', rec.envelope_from],
                                 ['to', rec.envelope_to]]) {
      if (value) list.append(el('li', {}, el('span', {class: 'muted'}, name + ': '), value));
    }
    return list.childElementCount ? list : el('span', {class: 'muted'}, '–');
  }

  function recordRow(rec) {
    const reasons = (Array.isArray(rec.reasons) ? rec.reasons : [])
        .map((x) => [x.type, x.comment].filter(Boolean).join(': '))
        .join('; ');
    return el('tr', {},
        el('td', {class: 'mono'}, rec.source_ip),
        el('td', {class: 'num'}, kNumber.format(rec.count)),
        el('td', {}, rec.disposition || '–'),
        el('td', {}, resultBadge(rec.dmarc)),
        el('td', {}, resultBadge(rec.policy_dkim)),
        el('td', {}, resultBadge(rec.policy_spf)),
        el('td', {}, identifiers(rec)),
        el('td', {}, authList(rec.dkim,
            (d) => `${d.domain || '–'}${d.selector ? ' / ' + d.selector : ''}`)),
        el('td', {}, authList(rec.spf,
            (s) => `${s.domain || '–'}${s.scope ? ' (' + s.scope + ')' : ''}`)),
        el('td', {class: 'small'}, reasons));
  }

  async function renderDetail(state) {
    $('back-link').setAttribute('href', overviewHash(state, 0));
    $('detail-title').textContent = `Report ${state.report}`;
    const report_dl = $('detail-report');
    const policy_dl = $('detail-policy');
    const tbody = $('records').querySelector('tbody');
    clear(report_dl);
    clear(policy_dl);
    clear(tbody);
    $('detail-records-count').textContent = '';

    let r;
    try {
      r = await api('reports/' + encodeURIComponent(state.report));
    } catch (err) {
      reportError(err);
      return;
    }
    $('detail-title').textContent = `${r.org_name || '(no organisation name)'}: ${r.report_id}`;
    fact(report_dl, 'Reporter', r.org_name);
    fact(report_dl, 'Contact', r.org_email);
    fact(report_dl, 'Report ID', r.report_id);
    fact(report_dl, 'Domain', r.domain);
    fact(report_dl, 'Period (UTC)', `${shortTime(r.begin)} – ${shortTime(r.end)}`);
    fact(report_dl, 'Messages', kNumber.format(r.messages));
    fact(report_dl, 'Received (UTC)', shortTime(r.received_at));
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
    for (const rec of records) tbody.append(recordRow(rec));
    // Most reporters never give override reasons (RFC 7489 section 6.6.2 lets
    // a receiver deviate); drop the column rather than show a row of dashes.
    const any_reasons = records.some((rec) => Array.isArray(rec.reasons) && rec.reasons.length);
    $('records').classList.toggle('no-reasons', !any_reasons);
    $('detail-records-count').textContent = `(${kNumber.format(records.length)})`;
  }

  // ---- failure report detail ----

  function list(values) {
    return Array.isArray(values) && values.length ? values.join(', ') : null;
  }

  async function renderFailureDetail(state) {
    $('failure-back-link').setAttribute('href', overviewHash(state, 0));
    $('failure-title').textContent = `Failure report ${state.failure}`;
    const facts = $('failure-facts');
    const message = $('failure-message');
    clear(facts);
    clear(message);
    $('failure-fields').textContent = '';
    $('failure-headers').textContent = '';
    $('failure-sample').textContent = '';

    let f;
    try {
      f = await api('failure-reports/' + encodeURIComponent(state.failure));
    } catch (err) {
      reportError(err);
      return;
    }
    $('failure-title').textContent =
        `Failure report ${f.id}: ${f.domain || '(no domain)'} from ${f.source_ip || 'an unknown source'}`;
    fact(facts, 'Domain', f.domain);
    fact(facts, 'Arrived (UTC)', shortTime(f.arrived_at));
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
    fact(facts, 'Received (UTC)', shortTime(f.received_at));
    fact(facts, 'Origin', f.origin);
    if (Array.isArray(f.warnings) && f.warnings.length) fact(facts, 'Warnings', f.warnings.join('; '));

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

  let render_serial = 0;

  async function render() {
    const serial = ++render_serial;
    document.body.dataset.ready = 'false';
    clearErrors();
    const state = parseHash();
    try {
      await domains_loaded;
    } catch (err) {
      // Shown on every view; the views below still try their own requests.
      reportError(err);
    }
    if (serial !== render_serial) return;
    syncForm(state);
    const detail = state.report !== null;
    const failure = !detail && state.failure !== null;
    show($('overview'), !detail && !failure);
    show($('detail'), detail);
    show($('failure-detail'), failure);
    document.body.dataset.view = detail ? 'detail' : (failure ? 'failure' : 'overview');
    try {
      if (detail) await renderDetail(state);
      else if (failure) await renderFailureDetail(state);
      else await renderOverview(state);
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
    wireFilters();
    domains_loaded = loadDomains();
    window.addEventListener('hashchange', render);
    render();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
