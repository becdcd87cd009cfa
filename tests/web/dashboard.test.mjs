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
const kXss = '<script>alert(1)</script><img src=x onerror=alert(2)>';
const kGoodFiles = [
  'google_np-version_dmarcgo.xml',
  'mimecast_standalone-selfclosing_dmarcgo.xml',
  'yahoo_yahooinc_dmarcgo.xml',
  'fastmail_four-records-multi-dkim_stalwart.xml',
  'xss_org_name.xml',
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
const kNumber = new Intl.NumberFormat('en-US');

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

async function figures(page) {
  return page.evaluate(() => {
    const value = (id) => document.getElementById(id).dataset.value;
    const text = (id) => document.getElementById(id).textContent;
    return {
      messages: value('summary-messages'),
      messages_text: text('summary-messages'),
      pass_rate_text: text('summary-pass-rate'),
      pass_note: text('summary-pass-note'),
      dkim: value('summary-dkim'),
      spf: value('summary-spf'),
      none: value('summary-disp-none'),
      quarantine: value('summary-disp-quarantine'),
      reject: value('summary-disp-reject'),
    };
  });
}

function assertFigures(shown, summary) {
  assert.equal(shown.messages, String(summary.messages));
  assert.equal(shown.messages_text, kNumber.format(summary.messages));
  const rate = summary.messages > 0 ? (100 * summary.dmarc_pass / summary.messages).toFixed(1) + ' %'
                                    : '–';
  assert.equal(shown.pass_rate_text, rate);
  assert.equal(shown.pass_note,
               `${kNumber.format(summary.dmarc_pass)} pass · ${kNumber.format(summary.dmarc_fail)} fail`);
  assert.equal(shown.dkim, String(summary.dkim_aligned_pass));
  assert.equal(shown.spf, String(summary.spf_aligned_pass));
  assert.equal(shown.none, String(summary.disposition.none));
  assert.equal(shown.quarantine, String(summary.disposition.quarantine));
  assert.equal(shown.reject, String(summary.disposition.reject));
}

async function reportRows(page) {
  return page.$$eval('#reports tbody tr', (rows) => rows.map((row) => ({
    id: row.dataset.reportId,
    org_name: row.querySelector('td a').textContent,
    report_id: row.cells[1].textContent,
    messages: row.cells[5].textContent,
  })));
}

async function recordRows(page) {
  return page.$$eval('#records tbody tr', (rows) => rows.map((row) => ({
    source_ip: row.cells[0].textContent,
    count: row.cells[1].textContent,
    disposition: row.cells[2].textContent,
    dkim_results: row.cells[7].textContent,
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
      has_chart_lib: typeof window.Chart === 'function',
      type: chart.config.type,
      stacked: chart.options.scales.x.stacked && chart.options.scales.y.stacked,
      labels: chart.data.labels,
      pass: chart.data.datasets[0].data,
      fail: chart.data.datasets[1].data,
      width: canvas.width,
      height: canvas.height,
      painted,
    };
  });
}

// ---- the test ----

async function main() {
  const dialogs = [];
  const page_errors = [];
  let base = null;

  await step('dmarcd ingest stores the good reports', async () => {
    const result = runIngest(kGoodFiles);
    assert.equal(result.status, 0, `exit ${result.status}\n${result.stdout}\n${result.stderr}`);
  });

  await step('dmarcd ingest rejects a file that is not a report, with a non-zero exit', async () => {
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
    api.series = await getJson(base, `/api/v1/timeseries?domain=${kDomain}`);
    api.reports = await getJson(base, `/api/v1/reports?domain=${kDomain}`);
    api.rejected = await getJson(base, '/api/v1/rejected');
    api.failures = await getJson(base, `/api/v1/failure-reports?domain=${kDomain}`);
    assert.equal(api.failures.total, 1, JSON.stringify(api.failures));
    assert.equal(api.summary.messages, 10);
    assert.deepEqual(api.reports.items.map((r) => r.report_id).sort(), kDomainReportIds);
  });
  if (!api.reports) return;

  const user_data_dir = fs.mkdtempSync(path.join(work, 'chromium-profile-'));
  browser_context = await chromium.launchPersistentContext(user_data_dir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: {width: 1280, height: 900},
  });
  const page = browser_context.pages()[0] || await browser_context.newPage();
  page.on('dialog', async (dialog) => {
    dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  page.on('pageerror', (err) => page_errors.push(err.message));
  const outside = [];
  page.on('request', (request) => {
    if (!request.url().startsWith(base) && !request.url().startsWith('data:')) {
      outside.push(request.url());
    }
  });

  await step('the dashboard loads at / with the domain list', async () => {
    await page.goto(base + '/');
    await settled(page, '');
    const options = await page.$$eval('#domain option', (os) => os.map((o) => o.value));
    assert.deepEqual(options.slice(1).sort(), api.domains.items.map((d) => d.domain).sort());
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
  });

  await step('Chart.js drew stacked bars of the daily pass and fail counts', async () => {
    const chart = await chartState(page);
    assert.ok(chart.has_chart_lib, 'window.Chart is missing');
    assert.equal(chart.type, 'bar');
    assert.ok(chart.stacked);
    assert.deepEqual(chart.labels, api.series.items.map((d) => d.date));
    assert.deepEqual(chart.pass, api.series.items.map((d) => d.dmarc_pass));
    assert.deepEqual(chart.fail, api.series.items.map((d) => d.dmarc_fail));
    assert.ok(chart.labels.length >= 3, `days: ${chart.labels}`);
    assert.ok(chart.width > 0 && chart.height > 0 && chart.painted > 1000,
              `canvas ${chart.width}x${chart.height}, ${chart.painted} pixels painted`);
  });

  await step('the reports table lists the domain\'s reports', async () => {
    const rows = await reportRows(page);
    assert.deepEqual(rows.map((r) => r.report_id).sort(), kDomainReportIds);
    assert.deepEqual(rows.map((r) => r.id).sort(),
                     api.reports.items.map((r) => String(r.id)).sort());
  });

  await step('a hostile org_name is shown as literal text and runs nothing', async () => {
    const rows = await reportRows(page);
    const xss_row = rows.find((r) => r.report_id === 'xss-org-name-1');
    assert.ok(xss_row, 'no row for the hostile report');
    assert.equal(xss_row.org_name, kXss);
    assert.equal(await page.locator('img').count(), 0);
    assert.equal(await page.locator('body script:not([src])').count(), 0);
    assert.deepEqual(dialogs, []);
  });

  await page.screenshot({path: path.join(output_dir, 'dashboard-overview.png'), fullPage: true});

  const xss_report = api.reports.items.find((r) => r.report_id === 'xss-org-name-1');
  const detail_hash = `#/reports/${xss_report.id}?domain=${kDomain}`;
  await step('clicking a report shows its records with source IPs and counts', async () => {
    await page.click(`#reports tr[data-report-id="${xss_report.id}"] a`);
    await settled(page, detail_hash);
    const detail = await getJson(base, `/api/v1/reports/${xss_report.id}`);
    const rows = await recordRows(page);
    const shown = rows.map((r) => `${r.source_ip} ${r.count}`).sort();
    assert.deepEqual(shown, ['192.0.2.10 5', '198.51.100.7 2']);
    assert.deepEqual(shown, detail.records.map((r) => `${r.source_ip} ${r.count}`).sort());
    assert.ok(rows.some((r) => r.dkim_results.includes('<b>sel</b>')), JSON.stringify(rows));
    const title = await page.textContent('#detail-title');
    assert.equal(title, `${kXss}: xss-org-name-1`);
    const policy = await page.$$eval('#detail-policy div',
        (ds) => ds.map((d) => [d.querySelector('dt').textContent, d.querySelector('dd').textContent]));
    assert.deepEqual(policy.find(([name]) => name === 'Policy (p)'), ['Policy (p)', 'quarantine']);
    assert.equal(await page.locator('img').count(), 0);
  });

  await page.screenshot({path: path.join(output_dir, 'dashboard-report.png'), fullPage: true});

  await step('reloading a bookmarked report URL shows the same report', async () => {
    await page.reload();
    await settled(page, detail_hash);
    const rows = await recordRows(page);
    assert.deepEqual(rows.map((r) => `${r.source_ip} ${r.count}`).sort(),
                     ['192.0.2.10 5', '198.51.100.7 2']);
  });

  const range_hash = `#/?domain=${kDomain}&from=2026-06-16&to=2026-06-17`;
  await step('a date range from the form filters the figures and the reports', async () => {
    await page.goto(base + '/' + `#/?domain=${kDomain}`);
    await settled(page, `#/?domain=${kDomain}`);
    await page.fill('#from', '2026-06-16');
    await page.fill('#to', '2026-06-17');
    await settled(page, range_hash);
    // The form's "to" is the last day shown; the API's is exclusive.
    const summary = await getJson(base,
        `/api/v1/summary?domain=${kDomain}&from=2026-06-16&to=2026-06-18`);
    assertFigures(await figures(page), summary);
    const reports = await getJson(base,
        `/api/v1/reports?domain=${kDomain}&from=2026-06-16&to=2026-06-18`);
    assert.deepEqual((await reportRows(page)).map((r) => r.id).sort(),
                     reports.items.map((r) => String(r.id)).sort());
    assert.ok(summary.messages < api.summary.messages, JSON.stringify(summary));
  });

  await step('reloading the bookmarked range restores the same view', async () => {
    const before = {figures: await figures(page), rows: await reportRows(page),
                    labels: (await chartState(page)).labels};
    await page.reload();
    await settled(page, range_hash);
    assert.equal(await page.inputValue('#domain'), kDomain);
    assert.equal(await page.inputValue('#from'), '2026-06-16');
    assert.equal(await page.inputValue('#to'), '2026-06-17');
    assert.deepEqual(await figures(page), before.figures);
    assert.deepEqual(await reportRows(page), before.rows);
    assert.deepEqual((await chartState(page)).labels, before.labels);
  });

  await step('the "All" preset clears the range again', async () => {
    await page.click('button[data-days="all"]');
    await settled(page, domain_hash);
    assertFigures(await figures(page), api.summary);
  });

  await step('the failure reports section lists the domain\'s failure reports as text', async () => {
    const rows = await page.$$eval('#failure-reports tbody tr', (trs) => trs.map((tr) => ({
      id: tr.dataset.failureId,
      cells: Array.from(tr.cells, (td) => td.textContent),
    })));
    const f = api.failures.items[0];
    assert.deepEqual(rows.map((r) => r.id), [String(f.id)]);
    assert.deepEqual(rows[0].cells, ['2026-06-16 10:00', '198.51.100.23', 'dmarc (aligned: none)',
                                     '"<b>Billing</b>" <billing@georgestarcher.com>', kFailureSubject]);
    assert.equal(f.subject, kFailureSubject);
    assert.equal(await page.locator('img').count(), 0);
    assert.equal(await page.locator('b').count(), 0);
    assert.deepEqual(dialogs, []);
  });

  await step('a range without the failure report leaves the section empty', async () => {
    await page.goto(base + '/' + `#/?domain=${kDomain}&from=2026-06-17&to=2026-06-17`);
    await settled(page, `#/?domain=${kDomain}&from=2026-06-17&to=2026-06-17`);
    assert.equal(await page.locator('#failure-reports tbody tr').count(), 0);
    assert.ok(await page.isVisible('#failures-empty'));
    await page.goto(base + '/' + domain_hash);
    await settled(page, domain_hash);
  });

  await step('a failure report\'s detail shows every field and the kept headers as text', async () => {
    const f = api.failures.items[0];
    const hash = `#/failure-reports/${f.id}?domain=${kDomain}`;
    await page.click(`#failure-reports tr[data-failure-id="${f.id}"] a`);
    await settled(page, hash);
    const detail = await getJson(base, `/api/v1/failure-reports/${f.id}`);
    const facts = Object.fromEntries(await page.$$eval('#failure-facts div, #failure-message div',
        (ds) => ds.map((d) => [d.querySelector('dt').textContent, d.querySelector('dd').textContent])));
    assert.equal(facts['Source IP'], '198.51.100.23 (mail.spoof.example.org)');
    assert.equal(facts['What failed (Auth-Failure)'], 'dmarc');
    assert.equal(facts['Identity-Alignment'], 'none');
    assert.equal(facts['Delivery-Result'], 'reject');
    assert.equal(facts['Original-Mail-From'], 'bounce@spoof.example.org');
    assert.equal(facts['Arrived (UTC)'], '2026-06-16 10:00');
    assert.equal(facts['Subject'], kFailureSubject);
    assert.equal(facts['Message-ID'], '<xss-failure-1@spoof.example.org>');
    assert.equal(await page.textContent('#failure-headers'), detail.headers);
    assert.ok(detail.headers.includes('X-Note: <script>alert(5)</script>'), detail.headers);
    assert.equal(await page.textContent('#failure-fields'), detail.fields.join('\n'));
    assert.equal(await page.locator('img').count(), 0);
    assert.equal(await page.locator('body script:not([src])').count(), 0);
    assert.deepEqual(dialogs, []);
    await page.screenshot({path: path.join(output_dir, 'dashboard-failure.png'), fullPage: true});
    await page.goto(base + '/' + domain_hash);
    await settled(page, domain_hash);
  });

  await step('the rejected input list shows what the API lists', async () => {
    await page.click('#rejected-box summary');
    const names = await page.$$eval('#rejected tbody .rejected-name', (ns) => ns.map((n) => n.textContent));
    assert.equal(names.length, Math.min(api.rejected.items.length, 50));
    assert.ok(api.rejected.items.length >= 1, JSON.stringify(api.rejected));
    assert.deepEqual(names, api.rejected.items.slice(0, 50).map((r) => r.name ?? ''));
  });

  await step('an API error is shown on the page, not swallowed', async () => {
    await page.goto(base + '/#/reports/987654321');
    await settled(page, '#/reports/987654321');
    const errors = await page.textContent('#errors');
    assert.match(errors, /not_found/);
  });

  await step('no dialog, no script error and no request outside dmarcd', async () => {
    assert.deepEqual(dialogs, []);
    assert.deepEqual(page_errors, []);
    assert.deepEqual(outside, []);
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
  if (failed > 0 && server_log) console.log(`# dmarcd serve output:\n${server_log.replace(/^/gm, '# ')}`);
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
