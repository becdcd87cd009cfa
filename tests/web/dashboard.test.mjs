// Browser test of the dmarcd dashboard: real reports are ingested with the real
// binary, `dmarcd serve` answers on a free loopback port, and Debian's Chromium
// (driven by playwright-core) checks that the page shows what the REST API says.
//
// Usage: node dashboard.test.mjs <path to dmarcd> <test data dir>
// Environment: DMARCD_WEB_TEST_MODULES  node_modules holding playwright-core
//              DMARCD_WEB_TEST_OUTPUT   folder for the screenshots (default: cwd)
// Ends with "N passed, N failed" and exits non-zero when anything failed.

import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import {createRequire} from 'node:module';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';

const [dmarcd, data_dir] = process.argv.slice(2);
if (!dmarcd || !data_dir) {
  console.error('usage: node dashboard.test.mjs <dmarcd binary> <test data dir>');
  process.exit(2);
}
const modules = process.env.DMARCD_WEB_TEST_MODULES;
const require = createRequire(modules ? path.join(modules, 'noop.js') : import.meta.url);
const {chromium} = require('playwright-core');
const output_dir = process.env.DMARCD_WEB_TEST_OUTPUT || process.cwd();

const kDomain = 'georgestarcher.com';
// Two example.com reports 74 days apart: 2286 + 20 records, so lists page.
const kBigDomain = 'example.com';
const kXss = '<script>alert(1)</script><img src=x onerror=alert(2)>';
const kGoodFiles = [
  'google_np-version_dmarcgo.xml',
  'mimecast_standalone-selfclosing_dmarcgo.xml',
  'yahoo_yahooinc_dmarcgo.xml',
  'fastmail_four-records-multi-dkim_stalwart.xml',
  'xss_org_name.xml',
  'xss_script_org_name.xml',
  'accurateplastics_large-2286-records_parsedmarc.xml',
  'google_20-records_parsedmarc.xml.gz',
];
const kBadFile = 'synthetic_not-a-report_kimon.xml';
// A failure (ruf) report for kDomain whose From, Subject and headers carry markup.
const kFailureFile = 'failure_xss_subject.eml';
const kFailureSubject = '<img src=x onerror=alert(3)><script>alert(4)</script>';
// report_id of every report ingested for kDomain.
const kDomainReportIds = [
  '18028803163198988333',
  'a877f65e16f46789f8428d867e2393c86772449e2ae4711f7d0ec8bbc2447ea2',
  '1781848448.914260',
  'xss-org-name-1',
].sort();
// The browser's zone: times on screen are local, days stay UTC.
const kZone = 'Europe/Berlin';
const kNumber = new Intl.NumberFormat('en-US');
const kLocalTime = new Intl.DateTimeFormat('sv-SE', {
  year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
  hourCycle: 'h23', timeZone: kZone,
});
const localTime = (iso) => kLocalTime.format(new Date(Date.parse(iso)));
const kPageSize = 50;

// ---- a tiny runner: every step counts, a failing step does not stop the rest ----

let passed = 0;
let failed = 0;
const failures = [];

async function step(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (err) {
    failed += 1;
    failures.push(name);
    console.log(`not ok - ${name}\n  ${String(err && err.stack || err).split('\n').join('\n  ')}`);
  }
}

// ---- the server ----

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarcd-web-test-'));
const db = path.join(work, 'dmarcd.db');
const port_file = path.join(work, 'port');
let server = null;
let server_log = '';
let browser_context = null;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function runIngest(files) {
  return spawnSync(dmarcd, ['ingest', '--db', db, ...files.map((f) => path.join(data_dir, f))],
                   {encoding: 'utf8', timeout: 60000});
}

async function startServer() {
  server = spawn(dmarcd, ['serve', '--db', db, '--listen', '127.0.0.1:0', '--port-file', port_file],
                 {stdio: ['ignore', 'pipe', 'pipe']});
  server.stdout.on('data', (chunk) => { server_log += chunk; });
  server.stderr.on('data', (chunk) => { server_log += chunk; });
  const exited = new Promise((resolve) => server.once('exit', (code) => resolve(code)));

  for (let i = 0; i < 300; i += 1) {
    const done = await Promise.race([exited, sleep(50).then(() => 'waiting')]);
    if (done !== 'waiting') throw new Error(`dmarcd serve exited (${done}):\n${server_log}`);
    if (!fs.existsSync(port_file)) continue;
    const text = fs.readFileSync(port_file, 'utf8').trim();
    const port = parseInt(text.slice(text.lastIndexOf(':') + 1), 10);
    if (port > 0) return `http://127.0.0.1:${port}`;
  }
  throw new Error(`dmarcd serve wrote no port file within 15 s:\n${server_log}`);
}

async function stopServer() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  const result = await Promise.race([exited.then(() => 'exited'), sleep(5000)]);
  if (result !== 'exited') {
    server.kill('SIGKILL');
    await exited;
  }
}

async function getJson(base, url) {
  const response = await fetch(base + url);
  const body = await response.json();
  assert.equal(response.status, 200, `${url}: ${JSON.stringify(body)}`);
  return body;
}

// ---- reading the page ----

// Waits until the dashboard has finished rendering the view for `hash`.
async function settled(page, hash) {
  await page.waitForFunction(
      (h) => document.body.dataset.ready === 'true' && document.body.dataset.rendered === h,
      hash, {timeout: 15000});
}

async function go(page, base, hash) {
  await page.goto(base + '/' + hash);
  await settled(page, hash);
}

async function figures(page) {
  return page.evaluate(() => {
    const value = (id) => document.getElementById(id).dataset.value;
    const text = (id) => document.getElementById(id).textContent;
    return {
      messages: value('summary-messages'),
      messages_text: text('summary-messages'),
      pass_rate_text: text('summary-pass-rate'),
      pass_note: text('summary-pass-note'),
      would_reject: value('summary-would-reject'),
      dkim: value('summary-dkim'),
      spf: value('summary-spf'),
      none: value('summary-disp-none'),
      quarantine: value('summary-disp-quarantine'),
      reject: value('summary-disp-reject'),
    };
  });
}

function wouldReject(f) {
  return Math.max(0, f.dmarc_fail - f.disposition.reject);
}

function assertFigures(shown, summary) {
  assert.equal(shown.messages, String(summary.messages));
  assert.equal(shown.messages_text, kNumber.format(summary.messages));
  const rate = summary.messages > 0 ?
      (100 * summary.dmarc_pass / summary.messages).toFixed(1) + ' %' : '–';
  assert.equal(shown.pass_rate_text, rate);
  assert.equal(shown.pass_note, `${kNumber.format(summary.dmarc_pass)} pass · ` +
                                `${kNumber.format(summary.dmarc_fail)} fail`);
  assert.equal(shown.would_reject, String(wouldReject(summary)));
  assert.equal(shown.dkim, String(summary.dkim_aligned_pass));
  assert.equal(shown.spf, String(summary.spf_aligned_pass));
  assert.equal(shown.none, String(summary.disposition.none));
  assert.equal(shown.quarantine, String(summary.disposition.quarantine));
  assert.equal(shown.reject, String(summary.disposition.reject));
}

// The text of every cell of `selector`'s body rows, with the row's data-* attributes.
async function tableRows(page, selector) {
  return page.$$eval(`${selector} tbody tr`, (rows) => rows.map((row) => ({
    data: {...row.dataset},
    cells: Array.from(row.cells, (td) => td.textContent.replace(/\s+/g, ' ').trim()),
    link: row.querySelector('td a') ? row.querySelector('td a').textContent : null,
  })));
}

async function chartState(page) {
  return page.evaluate(() => {
    const canvas = document.getElementById('trend-chart');
    const chart = window.Chart && window.Chart.getChart(canvas);
    if (!chart) return {has_chart_lib: typeof window.Chart === 'function', drawn: false};
    const ctx = canvas.getContext('2d');
    const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted += 1;
    return {
      has_chart_lib: true,
      stacked: chart.options.scales.x.stacked && chart.options.scales.y.stacked,
      labels: chart.data.labels,
      datasets: Object.fromEntries(chart.data.datasets.map((d) => [d.label, d.data])),
      types: chart.data.datasets.map((d) => d.type),
      width: canvas.width,
      height: canvas.height,
      painted,
    };
  });
}

// Nothing from report data became markup or ran.
async function assertInert(page, dialogs) {
  assert.equal(await page.locator('img').count(), 0);
  assert.equal(await page.locator('svg').count(), 0);
  assert.equal(await page.locator('body script').count(), 0);
  assert.equal(await page.locator('b').count(), 0);
  assert.deepEqual(dialogs, []);
}

async function shoot(page, name) {
  await page.screenshot({path: path.join(output_dir, 'screenshots', `${name}.png`),
                         fullPage: true});
}

// ---- the test ----

async function main() {
  const dialogs = [];
  const page_errors = [];
  let base = null;
  fs.mkdirSync(path.join(output_dir, 'screenshots'), {recursive: true});

  await step('dmarcd ingest stores the good reports', async () => {
    const result = runIngest(kGoodFiles);
    assert.equal(result.status, 0, `exit ${result.status}\n${result.stdout}\n${result.stderr}`);
  });

  await step('dmarcd ingest rejects a file that is not a report, exiting non-zero', async () => {
    const result = runIngest([kBadFile]);
    assert.notEqual(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.notEqual(result.status, null, `ingest did not finish: ${result.error}`);
  });

  await step('dmarcd ingest stores a failure report', async () => {
    const result = runIngest([kFailureFile]);
    assert.equal(result.status, 0, `exit ${result.status}\n${result.stdout}\n${result.stderr}`);
  });

  await step('dmarcd serve starts on a free loopback port', async () => {
    base = await startServer();
    const health = await getJson(base, '/healthz');
    assert.equal(health.status, 'ok');
  });
  if (!base) return;

  const api = {};
  await step('the REST API answers for the test domain', async () => {
    api.domains = await getJson(base, '/api/v1/domains');
    assert.ok(api.domains.items.some((d) => d.domain === kDomain), JSON.stringify(api.domains));
    api.summary = await getJson(base, `/api/v1/summary?domain=${kDomain}`);
    api.reports = await getJson(base, `/api/v1/reports?domain=${kDomain}`);
    api.rejected = await getJson(base, '/api/v1/rejected');
    api.failures = await getJson(base, `/api/v1/failure-reports?domain=${kDomain}`);
    assert.equal(api.failures.total, 1, JSON.stringify(api.failures));
    assert.equal(api.summary.messages, 10);
    assert.deepEqual(api.reports.items.map((r) => r.report_id).sort(), kDomainReportIds);
  });
  if (!api.reports) return;
  const hostile_domain = api.domains.items.map((d) => d.domain).find((d) => d.includes('<'));

  const user_data_dir = fs.mkdtempSync(path.join(work, 'chromium-profile-'));
  browser_context = await chromium.launchPersistentContext(user_data_dir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: {width: 1280, height: 900},
    timezoneId: kZone,
    locale: 'en-GB',
  });
  const page = browser_context.pages()[0] || await browser_context.newPage();
  page.on('dialog', async (dialog) => {
    dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  page.on('pageerror', (err) => page_errors.push(err.message));
  const csp_violations = [];
  page.on('console', (message) => {
    if (message.text().includes('Content Security Policy')) csp_violations.push(message.text());
  });
  const outside = [];
  const api_requests = [];
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(base) && !url.startsWith('data:')) outside.push(url);
    if (url.startsWith(base + '/api/v1/')) api_requests.push(url.slice(base.length));
  });

  await step('the dashboard loads at / with every domain as text, the zone named', async () => {
    const response = await page.goto(base + '/');
    assert.match(response.headers()['content-security-policy'], /script-src 'self'/);
    await settled(page, '');
    const options = await page.$$eval('#domain option', (os) => os.map((o) => o.textContent));
    assert.deepEqual(options.slice(1).sort(), api.domains.items.map((d) => d.domain).sort());
    assert.ok(hostile_domain, 'no domain with markup was ingested');
    assert.equal(await page.textContent('#zone-label'), kZone);
    await assertInert(page, dialogs);
  });

  const domain_hash = `#/?domain=${kDomain}`;
  await step('picking a domain puts it in the URL and shows all its data', async () => {
    await page.selectOption('#domain', kDomain);
    await settled(page, domain_hash);
    assert.equal(await page.inputValue('#from'), '');
    assert.equal(await page.inputValue('#to'), '');
  });

  await step('the summary figures equal /api/v1/summary', async () => {
    assertFigures(await figures(page), api.summary);
    assert.equal(await page.textContent('#summary-reports-note'), 'in 4 reports');
    // The newest report (Google, 7 July) saw p=reject.
    const policy = await getJson(base, `/api/v1/policy?domain=${kDomain}`);
    const newest = policy.items.reduce((a, b) => (b.last_seen > a.last_seen ? b : a));
    assert.equal(newest.p, 'reject');
    assert.equal(await page.textContent('#summary-policy'), 'reject');
    assert.equal(await page.textContent('#summary-policy-note'), 'pct=100');
  });

  await step('the trend is a continuous day axis from /api/v1/timeseries with fill', async () => {
    const url = api_requests.filter((u) => u.startsWith('/api/v1/timeseries')).pop();
    const query = new URL(base + url).searchParams;
    // The domain's data spans 2026-06-16 to 2026-07-07: 22 days, so days.
    assert.equal(query.get('from'), '2026-06-16');
    assert.equal(query.get('to'), '2026-07-08');
    assert.equal(query.get('bucket'), 'day');
    assert.equal(query.get('fill'), 'true');
    api.series = await getJson(base, url);
    const chart = await chartState(page);
    assert.ok(chart.has_chart_lib, 'window.Chart is missing');
    assert.ok(chart.stacked);
    assert.equal(chart.labels.length, 22);
    assert.deepEqual(chart.labels, api.series.items.map((d) => d.date));
    assert.deepEqual(chart.datasets['DMARC pass'], api.series.items.map((d) => d.dmarc_pass));
    assert.deepEqual(chart.datasets['DMARC fail'], api.series.items.map((d) => d.dmarc_fail));
    assert.deepEqual(chart.datasets['p=reject would block'], api.series.items.map(wouldReject));
    assert.deepEqual(chart.types, ['bar', 'bar', 'line']);
    const sum = (key) => api.series.items.reduce((n, d) => n + d[key], 0);
    assert.equal(sum('messages'), api.summary.messages);
    assert.ok(chart.width > 0 && chart.height > 0 && chart.painted > 1000,
              `canvas ${chart.width}x${chart.height}, ${chart.painted} pixels painted`);
  });

  await step('the trend stacks by disposition on request, kept in the URL', async () => {
    await page.click('#chart-by-disposition');
    await settled(page, `${domain_hash}&chart=disposition`);
    const chart = await chartState(page);
    const d = (key) => api.series.items.map((x) => x.disposition[key]);
    assert.deepEqual(chart.datasets['Delivered (none)'], d('none'));
    assert.deepEqual(chart.datasets['Quarantined'], d('quarantine'));
    assert.deepEqual(chart.datasets['Rejected'], d('reject'));
    await page.click('#chart-by-result');
    await settled(page, domain_hash);
  });

  await step('the top failing sources equal /api/v1/sources?result=fail', async () => {
    const sources = await getJson(base,
        `/api/v1/sources?domain=${kDomain}&result=fail&sort=failing&limit=5`);
    const rows = await tableRows(page, '#top-sources');
    assert.deepEqual(rows.map((r) => r.data.sourceIp), sources.items.map((s) => s.source_ip));
    assert.ok(rows.length > 0);
    assert.deepEqual(rows.map((r) => r.cells[2]),
                     sources.items.map((s) => kNumber.format(s.dmarc_fail)));
  });

  await shoot(page, 'overview');

  const range_hash = `#/?domain=${kDomain}&from=2026-06-16&to=2026-06-17`;
  await step('a date range from the form filters the figures and the trend', async () => {
    await page.fill('#from', '2026-06-16');
    await page.fill('#to', '2026-06-17');
    await settled(page, range_hash);
    // The form's "to" is the last day shown; the API's is exclusive.
    const summary = await getJson(base,
        `/api/v1/summary?domain=${kDomain}&from=2026-06-16&to=2026-06-18`);
    assertFigures(await figures(page), summary);
    assert.ok(summary.messages < api.summary.messages, JSON.stringify(summary));
    assert.deepEqual((await chartState(page)).labels, ['2026-06-16', '2026-06-17']);
  });

  await step('reloading the bookmarked range restores the same view', async () => {
    const before = {figures: await figures(page), labels: (await chartState(page)).labels};
    await page.reload();
    await settled(page, range_hash);
    assert.equal(await page.inputValue('#domain'), kDomain);
    assert.equal(await page.inputValue('#from'), '2026-06-16');
    assert.equal(await page.inputValue('#to'), '2026-06-17');
    assert.deepEqual(await figures(page), before.figures);
    assert.deepEqual((await chartState(page)).labels, before.labels);
  });

  await step('the "All" preset clears the range again', async () => {
    await page.click('button[data-days="all"]');
    await settled(page, domain_hash);
    assertFigures(await figures(page), api.summary);
  });

  await step('a wide range is bucketed by week, with the empty weeks filled', async () => {
    await go(page, base, `#/?domain=${kBigDomain}&from=2024-01-01&to=2024-12-31`);
    const url = api_requests.filter((u) => u.startsWith('/api/v1/timeseries')).pop();
    assert.match(url, /bucket=week/);
    const series = await getJson(base, url);
    const chart = await chartState(page);
    assert.deepEqual(chart.labels, series.items.map((d) => d.date));
    assert.ok(chart.labels.length >= 52, `${chart.labels.length} weeks`);
    // The large report runs from Sunday 31 March 15:00 UTC into Monday: two
    // weeks; the Google report of 13 June a third.
    assert.equal(series.items.filter((d) => d.messages > 0).length, 3);
  });

  const sources_hash = `#/sources?domain=${kBigDomain}`;
  await step('the sources tab lists /api/v1/sources, failing first, paged', async () => {
    await page.click('.tabs a[data-tab="sources"]');
    await settled(page, `#/sources?domain=${kBigDomain}&from=2024-01-01&to=2024-12-31`);
    await go(page, base, sources_hash);
    const sources = await getJson(base, `/api/v1/sources?domain=${kBigDomain}&result=all` +
                                        `&sort=failing&limit=${kPageSize}&offset=0`);
    assert.ok(sources.total > kPageSize, `only ${sources.total} sources`);
    const rows = await tableRows(page, '#sources');
    assert.deepEqual(rows.map((r) => r.data.sourceIp), sources.items.map((s) => s.source_ip));
    assert.deepEqual(rows.map((r) => r.cells[1]),
                     sources.items.map((s) => kNumber.format(s.messages)));
    assert.equal(await page.textContent('#sources-count'), `(${kNumber.format(sources.total)})`);
    // Reverse DNS is not looked up yet: a dash, never "null".
    assert.ok(rows.every((r) => !r.cells[0].includes('null')), JSON.stringify(rows[0]));
    assert.equal(await page.locator('#sources .rdns').first().textContent(), '—');
    const csv = await page.getAttribute('#sources-csv', 'href');
    assert.match(csv, /^api\/v1\/sources\?.*format=csv/);
  });

  await shoot(page, 'sources');

  await step('the next page of sources is the API\'s next page', async () => {
    await page.click('#sources-pager a[data-page="next"]');
    await settled(page, `${sources_hash}&offset=${kPageSize}`);
    const sources = await getJson(base, `/api/v1/sources?domain=${kBigDomain}` +
                                        `&limit=${kPageSize}&offset=${kPageSize}`);
    const rows = await tableRows(page, '#sources');
    assert.deepEqual(rows.map((r) => r.data.sourceIp), sources.items.map((s) => s.source_ip));
  });

  await step('"fails both DKIM and SPF alignment" filters as the API does', async () => {
    await page.click('#view-sources a[data-result="fail_both"]');
    await settled(page, `${sources_hash}&result=fail_both`);
    const sources = await getJson(base, `/api/v1/sources?domain=${kBigDomain}` +
                                        `&result=fail_both&limit=${kPageSize}`);
    const rows = await tableRows(page, '#sources');
    assert.deepEqual(rows.map((r) => r.data.sourceIp), sources.items.map((s) => s.source_ip));
    assert.ok(sources.items.every((s) => s.fail_both > 0), JSON.stringify(sources.items[0]));
  });

  let source_ip = null;
  await step('opening a source shows the records and reports behind it', async () => {
    const sources = await getJson(base, `/api/v1/sources?domain=${kDomain}&result=fail`);
    source_ip = sources.items[0].source_ip;
    await go(page, base, `#/sources?domain=${kDomain}&result=fail`);
    await page.click(`#sources tr[data-source-ip="${source_ip}"] a`);
    const hash = `#/sources/${encodeURIComponent(source_ip)}?domain=${kDomain}`;
    await settled(page, hash);
    const ip = encodeURIComponent(source_ip);
    const records = await getJson(base, `/api/v1/sources/${ip}/records?domain=${kDomain}`);
    const reports = await getJson(base, `/api/v1/reports?domain=${kDomain}&source_ip=${ip}`);
    const rows = await tableRows(page, '#source-records');
    assert.deepEqual(rows.map((r) => r.data.reportId),
                     records.items.map((r) => String(r.report_id)));
    assert.deepEqual(rows.map((r) => r.cells[2]), records.items.map((r) => String(r.count)));
    const report_rows = await tableRows(page, '#source-reports');
    assert.deepEqual(report_rows.map((r) => r.data.reportId),
                     reports.items.map((r) => String(r.id)));
    assert.ok(report_rows.length > 0);
    assert.equal(await page.textContent('#source-title'), `Source ${source_ip}`);
    const cards = await page.$$eval('#source-cards .card', (cs) => cs.map((c) => [
      c.querySelector('.card-label').textContent, c.querySelector('.card-value').textContent]));
    const row = sources.items[0];
    assert.deepEqual(cards.slice(0, 4), [
      ['Reverse DNS', '—'], ['Messages', kNumber.format(row.messages)],
      ['DMARC pass rate', (100 * row.dmarc_pass / row.messages).toFixed(1) + ' %'],
      ['Aligned with neither', kNumber.format(row.fail_both)]]);
    await assertInert(page, dialogs);
  });

  await shoot(page, 'source');

  await step('an IPv6 source opens too', async () => {
    // From the Google report of 20 records.
    const v6 = {source_ip: '2607:f8b0:4864:20::132'};
    const hash = `#/sources/${encodeURIComponent(v6.source_ip)}?domain=${kBigDomain}`;
    await go(page, base, hash);
    const records = await getJson(base, `/api/v1/sources/${encodeURIComponent(v6.source_ip)}` +
                                        `/records?domain=${kBigDomain}`);
    assert.equal((await tableRows(page, '#source-records')).length, records.items.length);
    assert.ok(records.items.length > 0);
  });

  await step('the reporters tab lists /api/v1/reporters with names as text', async () => {
    await go(page, base, `#/reporters?domain=${kDomain}`);
    const reporters = await getJson(base, `/api/v1/reporters?domain=${kDomain}`);
    const rows = await tableRows(page, '#reporters');
    assert.deepEqual(rows.map((r) => r.cells[2]),
                     reporters.items.map((r) => kNumber.format(r.messages)));
    assert.ok(rows.some((r) => r.cells[0].startsWith(kXss)), JSON.stringify(rows));
    const first = reporters.items[0];
    assert.equal(rows[0].cells[7], localTime(first.last_seen));
    await assertInert(page, dialogs);
  });

  await shoot(page, 'reporters');

  await step('the reports tab lists the domain\'s reports, markup as text', async () => {
    await go(page, base, `#/reports?domain=${kDomain}`);
    const rows = await tableRows(page, '#reports');
    assert.deepEqual(rows.map((r) => r.cells[1]).sort(), kDomainReportIds);
    assert.deepEqual(rows.map((r) => r.data.reportId),
                     api.reports.items.map((r) => String(r.id)));
    const xss_row = rows.find((r) => r.cells[1] === 'xss-org-name-1');
    assert.equal(xss_row.link, kXss);
    await assertInert(page, dialogs);
  });

  await shoot(page, 'reports');

  await step('the rejected input list shows what the API lists', async () => {
    await page.click('#rejected-box summary');
    const names = await page.$$eval('#rejected tbody .rejected-name',
                                    (ns) => ns.map((n) => n.textContent));
    assert.ok(api.rejected.items.length >= 1, JSON.stringify(api.rejected));
    assert.deepEqual(names, api.rejected.items.slice(0, 50).map((r) => r.name ?? ''));
  });

  const xss_report = api.reports.items.find((r) => r.report_id === 'xss-org-name-1');
  const detail_hash = `#/reports/${xss_report.id}?domain=${kDomain}`;
  await step('a report shows its policy and records, and offers the raw file', async () => {
    await page.click(`#reports tr[data-report-id="${xss_report.id}"] a`);
    await settled(page, detail_hash);
    const detail = await getJson(base, `/api/v1/reports/${xss_report.id}`);
    const rows = await tableRows(page, '#records');
    const shown = rows.map((r) => `${r.cells[0]} ${r.cells[1]}`).sort();
    assert.deepEqual(shown, ['192.0.2.10 5', '198.51.100.7 2']);
    assert.deepEqual(shown, detail.records.map((r) => `${r.source_ip} ${r.count}`).sort());
    assert.ok(rows.some((r) => r.cells[7].includes('<b>sel</b>')), JSON.stringify(rows));
    assert.equal(await page.textContent('#detail-title'), `${kXss}: xss-org-name-1`);
    const policy = await page.$$eval('#detail-policy div', (ds) => ds.map(
        (d) => [d.querySelector('dt').textContent, d.querySelector('dd').textContent]));
    assert.deepEqual(policy.find(([name]) => name === 'Policy (p)'), ['Policy (p)', 'quarantine']);
    const raw_href = await page.getAttribute('#detail-raw', 'href');
    assert.equal(raw_href, `api/v1/reports/${xss_report.id}/raw`);
    assert.ok(await page.isVisible('#detail-raw'));
    const raw = await fetch(`${base}/${raw_href}`);
    assert.equal(raw.status, 200);
    assert.deepEqual(Buffer.from(await raw.arrayBuffer()),
                     fs.readFileSync(path.join(data_dir, 'xss_org_name.xml')));
    await assertInert(page, dialogs);
  });

  await shoot(page, 'report');

  await step('reloading a bookmarked report URL shows the same report', async () => {
    await page.reload();
    await settled(page, detail_hash);
    const rows = await tableRows(page, '#records');
    assert.deepEqual(rows.map((r) => `${r.cells[0]} ${r.cells[1]}`).sort(),
                     ['192.0.2.10 5', '198.51.100.7 2']);
  });

  await step('a report of 2286 records shows them 100 at a time', async () => {
    const reports = await getJson(base, `/api/v1/reports?domain=${kBigDomain}`);
    const big = reports.items.find((r) => r.records === 2286);
    assert.ok(big, JSON.stringify(reports.items));
    await go(page, base, `#/reports/${big.id}?domain=${kBigDomain}`);
    assert.equal(await page.textContent('#detail-records-count'), '(2,286)');
    assert.equal((await tableRows(page, '#records')).length, 100);
    await page.click('#records-pager a[data-page="next"]');
    await settled(page, `#/reports/${big.id}?domain=${kBigDomain}&offset=100`);
    const detail = await getJson(base, `/api/v1/reports/${big.id}?limit=100&offset=100`);
    const rows = await tableRows(page, '#records');
    assert.deepEqual(rows.map((r) => r.cells[0]), detail.records.map((r) => r.source_ip));
  });

  await step('the policy tab asks for a domain, then lists /api/v1/policy', async () => {
    await go(page, base, '#/policy');
    assert.ok(await page.isVisible('#policy-pick'));
    await page.selectOption('#domain', kDomain);
    await settled(page, `#/policy?domain=${kDomain}`);
    const policy = await getJson(base, `/api/v1/policy?domain=${kDomain}`);
    const rows = await tableRows(page, '#policy');
    assert.deepEqual(rows.map((r) => r.cells[0]), policy.items.map((p) => p.p));
    assert.ok(rows.length >= 2, 'georgestarcher.com published two policies');
    assert.deepEqual(rows.map((r) => r.cells[9]), policy.items.map((p) => localTime(p.first_seen)));
  });

  await shoot(page, 'policy');

  await step('the failure reports tab lists the domain\'s failure reports as text', async () => {
    await go(page, base, `#/failure-reports?domain=${kDomain}`);
    const rows = await tableRows(page, '#failure-reports');
    const f = api.failures.items[0];
    assert.deepEqual(rows.map((r) => r.data.failureId), [String(f.id)]);
    // Arrived 10:00 UTC, shown in Berlin summer time.
    assert.deepEqual(rows[0].cells, ['2026-06-16 12:00', '198.51.100.23', 'dmarc (aligned: none)',
                                     '"<b>Billing</b>" <billing@georgestarcher.com>',
                                     kFailureSubject]);
    assert.equal(f.subject, kFailureSubject);
    await assertInert(page, dialogs);
  });

  await step('a range without the failure report leaves the list empty', async () => {
    await go(page, base, `#/failure-reports?domain=${kDomain}&from=2026-06-17&to=2026-06-17`);
    assert.equal(await page.locator('#failure-reports tbody tr').count(), 0);
    assert.ok(await page.isVisible('#failures-empty'));
  });

  await step('a failure report\'s detail shows every field and the kept headers as text',
             async () => {
    const f = api.failures.items[0];
    await go(page, base, `#/failure-reports?domain=${kDomain}`);
    await page.click(`#failure-reports tr[data-failure-id="${f.id}"] a`);
    await settled(page, `#/failure-reports/${f.id}?domain=${kDomain}`);
    const detail = await getJson(base, `/api/v1/failure-reports/${f.id}`);
    const facts = Object.fromEntries(await page.$$eval(
        '#failure-facts div, #failure-message div',
        (ds) => ds.map((d) => [d.querySelector('dt').textContent,
                               d.querySelector('dd').textContent])));
    assert.equal(facts['Source IP'], '198.51.100.23 (mail.spoof.example.org)');
    assert.equal(facts['What failed (Auth-Failure)'], 'dmarc');
    assert.equal(facts['Identity-Alignment'], 'none');
    assert.equal(facts['Delivery-Result'], 'reject');
    assert.equal(facts['Original-Mail-From'], 'bounce@spoof.example.org');
    assert.equal(facts[`Arrived (${kZone})`], '2026-06-16 12:00');
    assert.equal(facts['Subject'], kFailureSubject);
    assert.equal(facts['Message-ID'], '<xss-failure-1@spoof.example.org>');
    assert.equal(await page.textContent('#failure-headers'), detail.headers);
    assert.ok(detail.headers.includes('X-Note: <script>alert(5)</script>'), detail.headers);
    assert.equal(await page.textContent('#failure-fields'), detail.fields.join('\n'));
    await assertInert(page, dialogs);
    await shoot(page, 'failure-report');
  });

  await step('the hostile domain\'s views show its markup as text and run nothing', async () => {
    const encoded = encodeURIComponent(hostile_domain);
    await go(page, base, `#/sources?domain=${encoded}`);
    const rows = await tableRows(page, '#sources');
    assert.equal(rows.length, 1);
    assert.ok(rows[0].cells[6].includes('<svg onload=alert(\'header_from\')>'),
              JSON.stringify(rows));
    await go(page, base, `#/reports?domain=${encoded}`);
    const reports = await tableRows(page, '#reports');
    assert.deepEqual(reports.map((r) => r.link), ['<script>alert(\'org_name\')</script>']);
    assert.deepEqual(reports.map((r) => r.cells[1]), ['<img src=x onerror=alert(\'report_id\')>']);
    await page.click('#reports tbody a');
    await page.waitForFunction(() => document.body.dataset.view === 'report' &&
                                     document.body.dataset.ready === 'true');
    assert.match(await page.textContent('#records'), /<svg onload=alert\('header_from'\)>/);
    await assertInert(page, dialogs);
  });

  await step('a route the server lacks leaves a "not available" note, not a broken page',
             async () => {
    // What a dmarcd without the route answers (its catch-all for /api/).
    const missing = {error: {code: 'not_found', message: 'no such endpoint'}};
    await page.route('**/api/v1/reporters?*', (route) => route.fulfill(
        {status: 404, contentType: 'application/json', body: JSON.stringify(missing)}));
    try {
      await go(page, base, `#/reporters?domain=${kDomain}`);
      assert.match(await page.textContent('#reporters-empty'),
                   /^Not available: this dmarcd does not answer api\/v1\/reporters yet\.$/);
      assert.ok(await page.isVisible('#reporters-empty'));
      assert.equal(await page.isVisible('#reporters'), false);
      assert.equal(await page.textContent('#errors'), '');
    } finally {
      await page.unroute('**/api/v1/reporters?*');
    }
  });

  await step('an API error is shown on the page, not swallowed', async () => {
    await go(page, base, '#/reports/987654321');
    const errors = await page.textContent('#errors');
    assert.match(errors, /not_found/);
  });

  await step('on a phone the overview fits the screen width', async () => {
    await page.setViewportSize({width: 390, height: 844});
    await go(page, base, domain_hash);
    assertFigures(await figures(page), api.summary);
    const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
    await shoot(page, 'phone-overview');
    await page.setViewportSize({width: 1280, height: 900});
  });

  await step('no dialog, no script error and no request outside dmarcd', async () => {
    assert.deepEqual(dialogs, []);
    assert.deepEqual(page_errors, []);
    assert.deepEqual(outside, []);
    assert.deepEqual(csp_violations, []);
  });
}

const guard = setTimeout(() => {
  console.log('not ok - the whole test took longer than 150 s');
  failed += 1;
  finish();
}, 150000);

let finishing = false;
async function finish() {
  if (finishing) return;
  finishing = true;
  clearTimeout(guard);
  try {
    if (browser_context) await browser_context.close();
  } catch (err) {
    console.log(`# closing the browser failed: ${err.message}`);
  }
  await stopServer();
  if (failed > 0 && server_log) {
    console.log(`# dmarcd serve output:\n${server_log.replace(/^/gm, '# ')}`);
  }
  fs.rmSync(work, {recursive: true, force: true});
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 || passed === 0 ? 1 : 0);
}

// A killed test (ctest's timeout, Ctrl-C) still stops the server it started.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    console.log(`not ok - interrupted by ${signal}`);
    failed += 1;
    finish();
  });
}
process.on('exit', () => {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
});

main().catch((err) => {
  failed += 1;
  console.log(`not ok - unexpected error\n  ${err && err.stack || err}`);
}).finally(finish);
