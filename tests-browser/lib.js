// What every browser suite shares: the running `zhifu dev` (run.sh starts it
// and sets ZHIFU_URL / ZHIFU_API_KEY), one headless Chromium per test file
// (Debian `chromium`, driven by playwright-core), page helpers that collect
// console and CSP errors, the axe-core check (no serious or critical
// violations), the no-horizontal-scroll check, and merchant API calls.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const JSQR = readFileSync(require.resolve('jsqr/dist/jsQR.js'), 'utf8');
export const BASE = (process.env.ZHIFU_URL || '').replace(/\/$/, '');
export const API_KEY = process.env.ZHIFU_API_KEY || '';
export const SHOTS = join(here, 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// A free port for the merchant's page, whose origin the server allows (CORS).
export const MERCHANT_PORT = process.env.ZHIFU_MERCHANT_PORT || '';

assert.ok(BASE, 'ZHIFU_URL must name the running `zhifu dev` (run.sh sets it)');
assert.ok(API_KEY, 'ZHIFU_API_KEY must be the key `zhifu dev` uses (run.sh sets it)');
assert.ok(MERCHANT_PORT, 'ZHIFU_MERCHANT_PORT must be a free port listed in ZHIFU_CHECKOUT_CORS_ORIGINS (run.sh sets both)');
mkdirSync(SHOTS, { recursive: true });

export const DESKTOP = { viewport: { width: 1280, height: 860 }, locale: 'en-US' };
export const PHONE_UA =
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36';
export const PHONE = {
  viewport: { width: 360, height: 740 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  userAgent: PHONE_UA,
  locale: 'zh-CN',
};
// The Alipay app's in-app browser announces itself like this.
export const ALIPAY_APP = { ...PHONE, userAgent: PHONE_UA + ' AlipayClient/10.6.8.6000 Language/zh-Hans' };

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-gpu',
      '--no-first-run',
    ],
  });
});

after(async () => {
  if (browser) await browser.close();
});

/** A fresh context and page; console errors (CSP violations included) are collected. */
export async function open(options) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => {
    // HTTP errors of fetch() calls are expected in some journeys (a wrong
    // API key); a broken page shows up below as a failed document, script,
    // style or image instead. CSP violations ("Refused to …") stay errors.
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) problems.push(m.text());
  });
  page.on('response', (r) => {
    const type = r.request().resourceType();
    if (r.status() >= 400 && ['document', 'script', 'stylesheet', 'image', 'font'].includes(type) && !/\/favicon\.ico$/.test(r.url())) {
      problems.push(`${r.status()} ${type} ${r.url()}`);
    }
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  return { context, page, problems };
}

export async function finish(t, { context, page, problems }, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  await context.close();
  assert.deepEqual(problems, [], `${t.name}: the page logged errors`);
}

/** axe-core on the current page: no serious or critical violations. */
export async function axe(page, what) {
  // evaluate() is not subject to the page's CSP, which forbids inline scripts.
  await page.evaluate(AXE);
  const result = await page.evaluate(() =>
    window.axe.run(document, { resultTypes: ['violations'] }),
  );
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    [],
    `accessibility of ${what}`,
  );
}

/** No horizontal scrolling: the page fits the viewport. */
export async function fitsWidth(page, what) {
  const m = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
  }));
  // A mobile browser widens its layout viewport to overflowing content, so
  // innerWidth alone would grow with the overflow: compare with the device.
  const scroll = m.scroll;
  const width = Math.min(m.inner, page.viewportSize().width);
  assert.ok(scroll <= width, `${what} is ${scroll}px wide in a ${width}px viewport`);
}

export async function api(method, path, body) {
  const r = await fetch(BASE + path, {
    method,
    headers: {
      Authorization: `Bearer ${API_KEY}`,
      ...(body ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await r.json();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

/** The merchant API's view of an order, found by its merchant order number. */
export async function orderByOutTradeNo(outTradeNo) {
  const page = await api('GET', '/v1/orders?limit=100');
  const o = page.data.find((x) => x.out_trade_no === outTradeNo);
  assert.ok(o, `order ${outTradeNo} is listed by the merchant API`);
  return o;
}

export async function sandboxPay(outTradeNo) {
  const r = await fetch(BASE + '/sandbox/api/trades/pay', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ out_trade_no: outTradeNo }),
  });
  assert.equal(r.status, 200, `sandbox pays ${outTradeNo}: ${await r.text()}`);
}

export async function waitForOrderStatus(outTradeNo, status) {
  for (let i = 0; i < 100; i++) {
    const o = await orderByOutTradeNo(outTradeNo);
    if (o.status === status) return o;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`order ${outTradeNo} never became ${status}`);
}

/** A checkout made the way a browser makes one (no page), for journeys that start later. */
export async function checkoutFromNode(body) {
  const r = await fetch(BASE + '/checkout', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 201);
  return r.json();
}

export async function text(page, selector) {
  return (await page.locator(selector).textContent()).trim();
}

/** Buy from the storefront, then check the sandbox cashier shows our subject and amount. */
export async function buyToCashier(page, { sku, quantity, channel, subject, amount }) {
  await page.goto(BASE + '/');
  const product = page.locator(`li[data-sku="${sku}"]`);
  await product.locator('input.qty').fill(String(quantity));
  await product.locator(`button[data-channel="${channel}"]`).click();
  await page.waitForURL(/\/sandbox\/cashier\//);
  assert.equal(await text(page, '#subject'), subject);
  assert.equal(await text(page, '#amount'), amount);
  return text(page, '#out_trade_no');
}
