// Drives the node's web console in Debian's headless Chromium (playwright-core, no browser
// download) and prints what a person would see as one JSON line on stdout; the C++ test
// (tests/integ/console_test.cc) asserts on it. Every wait is bounded; the whole run is cut at
// WATCHDOG_MS.
//
//   node drive.mjs --base http://127.0.0.1:PORT --failed ID --failed-host H --live ID2
//                  --release FILE --out DIR [--chromium /usr/bin/chromium]
// --release: a file holding the --live deployment's hooks; removed once the page shows it running.
import {chromium} from 'playwright-core';
import {mkdirSync, rmSync} from 'node:fs';
import {join} from 'node:path';

const WATCHDOG_MS = 170000;
const STEP_MS = 15000;      // one page step (navigation, a table appearing)
const LIVE_MS = 90000;      // a running deployment reaching its end

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['base', 'failed', 'failed-host', 'out']) {
  if (!args[k]) { console.error(`drive.mjs: --${k} is required`); process.exit(2); }
}
const base = args.base.replace(/\/$/, '');
const origin = new URL(base).origin;
mkdirSync(args.out, {recursive: true});
setTimeout(() => { console.error('drive.mjs: watchdog: the run took too long'); process.exit(3); },
  WATCHDOG_MS).unref();

const seen = {outsideRequests: [], consoleErrors: [], pageErrors: []};

// Every request of the page must go to the node itself.
function watch(page) {
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith('data:') && new URL(u).origin !== origin) seen.outsideRequests.push(u);
  });
  page.on('console', (m) => { if (m.type() === 'error') seen.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => seen.pageErrors.push(String(e)));
}

async function headers() {
  const out = {};
  const index = await fetch(base + '/ui/');
  out.index = {status: index.status, type: index.headers.get('content-type'),
    csp: index.headers.get('content-security-policy'), cache: index.headers.get('cache-control'),
    etag: index.headers.get('etag'), nosniff: index.headers.get('x-content-type-options')};
  const again = await fetch(base + '/ui/', {headers: {'If-None-Match': out.index.etag || '"x"'}});
  out.revalidated = {status: again.status, body: (await again.text()).length};
  const js = await fetch(base + '/ui/console.js');
  out.script = {status: js.status, type: js.headers.get('content-type')};
  const missing = await fetch(base + '/ui/nope.html');
  out.missing = {status: missing.status, csp: missing.headers.get('content-security-policy')};
  const traversal = await fetch(base + '/ui/..%2F..%2Fetc%2Fpasswd');
  out.traversal = {status: traversal.status};
  const post = await fetch(base + '/ui/', {method: 'POST', body: '{}'});
  out.post = {status: post.status, allow: post.headers.get('allow')};
  const bare = await fetch(base + '/ui', {redirect: 'manual'});
  out.bare = {status: bare.status, location: bare.headers.get('location')};
  return out;
}

const result = {};
const browser = await chromium.launch({
  executablePath: args.chromium || '/usr/bin/chromium',
  // Chromium refuses to run as root with its sandbox; tests run as root in CI.
  args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
  timeout: 60000,
});
try {
  result.headers = await headers();

  const desktop = await browser.newContext({viewport: {width: 1280, height: 800}});
  desktop.setDefaultTimeout(STEP_MS);
  const page = await desktop.newPage();
  watch(page);

  // A running deployment, watched until it ends without reloading the page.
  if (args.live) {
    await page.goto(`${base}/ui/#/deployments/${encodeURIComponent(args.live)}`);
    const status = page.locator('dl.facts dd').first();
    await status.locator('.badge').waitFor();
    result.live = {first: (await status.innerText()).trim(), navigations: 0};
    if (args.release) rmSync(args.release, {force: true});
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) result.live.navigations++; });
    const t0 = Date.now();
    await page.waitForFunction(() => {
      const b = document.querySelector('dl.facts dd .badge');
      return b && ['Succeeded', 'Failed', 'Stopped'].includes(b.textContent);
    }, null, {timeout: LIVE_MS});
    result.live.final = (await status.innerText()).trim();
    result.live.waitedMs = Date.now() - t0;
    result.live.hostRows = await page.locator('table.hosts tbody tr').count();
    page.removeAllListeners('framenavigated');
  }

  // The list, its filters, then the failed deployment.
  await page.goto(`${base}/ui/`);
  const row = page.locator(`table.deployments tr[data-id="${args.failed}"]`);
  await row.waitFor();
  result.list = {
    rowText: (await row.innerText()).replace(/\s+/g, ' ').trim(),
    status: (await row.locator('td.status').innerText()).trim(),
    rows: await page.locator('table.deployments tbody tr').count(),
  };
  // <main data-rendered=HASH> once the view drew the data of that route.
  const rendered = (hash) => page.locator(`main[data-rendered="${hash}"]`).waitFor({state: 'attached'});
  await page.selectOption('#f-status', 'Failed');
  await rendered('#/deployments?status=Failed');
  result.list.failedFilterIds = await page.locator('table.deployments tbody tr')
    .evaluateAll((rs) => rs.map((r) => r.dataset.id));
  await page.selectOption('#f-status', 'Succeeded');
  await rendered('#/deployments?status=Succeeded');
  result.list.succeededFilterIds = await page.locator('table.deployments tbody tr')
    .evaluateAll((rs) => rs.map((r) => r.dataset.id));
  await page.selectOption('#f-status', '');
  await rendered('#/deployments');
  await page.locator(`table.deployments tr[data-id="${args.failed}"] a`).click();
  await rendered(`#/deployments/${args.failed}`);
  await page.locator('table.hosts').waitFor();
  await page.locator('section.failures pre.log').first().waitFor();
  result.deployment = {
    status: (await page.locator('dl.facts dd').first().innerText()).trim(),
    hosts: await page.locator('table.hosts tbody tr').evaluateAll((rs) => rs.map((r) => ({
      host: r.dataset.host, status: r.querySelector('td.status').textContent,
    }))),
  };
  const failure = page.locator(`section.failures article[data-host="${args['failed-host']}"]`).first();
  result.deployment.failureHeading = (await failure.locator('h3').innerText()).trim();
  result.deployment.logTail = await failure.locator('pre.log').textContent();
  // The hostile log must be text: no element made from it, no script run.
  result.deployment.injectedElements = await page.locator('main script, main img, main iframe').count();
  result.deployment.pwned = await page.evaluate(() => window.__pwned === undefined ? null : String(window.__pwned));
  await failure.locator('button.load-log').click();
  await failure.locator('button.load-log', {hasText: 'Reload full log'}).waitFor();
  result.deployment.fullLog = await failure.locator('pre.log').textContent();
  result.deployment.pwnedAfterFullLog = await page.evaluate(() => window.__pwned === undefined ? null : String(window.__pwned));
  result.screenshot = join(args.out, 'console.png');
  await page.screenshot({path: result.screenshot, fullPage: true});
  result.deployment.pageWiderThanWindow = await page.evaluate(
    () => document.documentElement.scrollWidth > document.documentElement.clientWidth);

  // Members and revisions.
  await page.goto(`${base}/ui/#/members`);
  await page.locator('table.members tbody tr').first().waitFor();
  result.members = await page.locator('table.members tbody tr').evaluateAll((rs) => rs.map((r) => ({
    name: r.dataset.member, status: r.querySelector('td.status').textContent,
    tags: [...r.querySelectorAll('ul.tags li')].map((li) => li.textContent),
  })));
  await page.goto(`${base}/ui/#/revisions`);
  await page.locator('table.revisions tbody tr').first().waitFor();
  result.revisions = await page.locator('section[data-app]').evaluateAll((ss) => ss.map((s) => ({
    app: s.dataset.app, count: s.querySelectorAll('tbody tr').length,
  })));
  await desktop.close();

  // Phone width: nothing wider than the screen (wide tables scroll inside their box).
  const phone = await browser.newContext({viewport: {width: 390, height: 844}, isMobile: true,
    hasTouch: true, deviceScaleFactor: 2});
  phone.setDefaultTimeout(STEP_MS);
  const small = await phone.newPage();
  watch(small);
  result.phone = {};
  await small.goto(`${base}/ui/`);
  await small.locator('table.deployments tbody tr').first().waitFor();
  result.phone.listWiderThanScreen = await small.evaluate(
    () => document.documentElement.scrollWidth > document.documentElement.clientWidth);
  await small.goto(`${base}/ui/#/deployments/${encodeURIComponent(args.failed)}`);
  await small.locator('section.failures pre.log').first().waitFor();
  result.phone.deploymentWiderThanScreen = await small.evaluate(
    () => document.documentElement.scrollWidth > document.documentElement.clientWidth);
  result.phone.logVisible = await small.locator('section.failures pre.log').first().isVisible();
  result.phoneScreenshot = join(args.out, 'console-phone.png');
  await small.screenshot({path: result.phoneScreenshot, fullPage: true});
  await phone.close();
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
Object.assign(result, seen);
console.log(JSON.stringify(result));
