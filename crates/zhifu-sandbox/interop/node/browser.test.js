// A buyer in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core): the official SDK builds a page-pay URL, the browser sees
// the sandbox cashier with the right subject and amount, clicks Pay and lands
// on return_url with parameters whose signature verifies.
// Run: ZHIFU_BIN=path/to/zhifu node --test
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startSandbox, api, newApp, startReceiver, formToObject } = require('./harness');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-gpu', '--no-first-run'];

function startShop() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end('<!doctype html><title>shop</title><h1 id="back">正在确认支付结果…</h1>');
    });
    server.listen(0, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}`,
      close: () => new Promise((r) => server.close(r)),
    }));
  });
}

test('browser: page pay → cashier → Pay → verified return_url', async (t) => {
  const sb = await startSandbox();
  t.after(() => sb.stop());
  const rx = await startReceiver();
  t.after(() => rx.close());
  const shop = await startShop();
  t.after(() => shop.close());
  const { sdk, appId, sellerId } = await newApp(sb);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  t.after(() => browser.close());
  const page = await browser.newPage();

  const out = `WEB${Date.now()}`;
  const url = sdk.pageExecute('alipay.trade.page.pay', 'GET', {
    bizContent: { out_trade_no: out, total_amount: '128.50', subject: '机械键盘 Keyboard', product_code: 'FAST_INSTANT_TRADE_PAY' },
    returnUrl: `${shop.url}/return`,
    notifyUrl: `${rx.url}/notify`,
  });
  await page.goto(url);
  assert.match(page.url(), /\/sandbox\/cashier\//);
  assert.equal(await page.textContent('#subject'), '机械键盘 Keyboard');
  assert.equal(await page.textContent('#amount'), '128.50');
  assert.match(await page.textContent('#merchant'), new RegExp(appId));
  await page.screenshot({ path: path.join(os.tmpdir(), 'zhifu-sandbox-cashier.png') });

  await Promise.all([page.waitForURL(`${shop.url}/return**`), page.click('#pay')]);
  assert.equal(await page.textContent('#back'), '正在确认支付结果…');
  const params = Object.fromEntries(new URL(page.url()).searchParams);
  assert.equal(sdk.checkNotifySign(params), true, page.url());
  assert.equal(params.method, 'alipay.trade.page.pay.return');
  assert.equal(params.out_trade_no, out);
  assert.equal(params.total_amount, '128.50');
  assert.equal(params.seller_id, sellerId);
  assert.equal(params.app_id, appId);
  // Forged return: change the amount and the signature no longer verifies.
  assert.equal(sdk.checkNotifySign({ ...params, total_amount: '0.01' }), false);

  await rx.waitFor(1);
  const n = formToObject(rx.hits[0].body);
  assert.equal(sdk.checkNotifySign(n), true);
  assert.equal(n.trade_status, 'TRADE_SUCCESS');
  assert.equal(n.trade_no, params.trade_no);
});

test('browser: POST form page pay, Cancel leaves the trade waiting', async (t) => {
  const sb = await startSandbox();
  t.after(() => sb.stop());
  const { sdk } = await newApp(sb);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const out = `FORM${Date.now()}`;
  const html = sdk.pageExecute('alipay.trade.page.pay', 'POST', {
    bizContent: { out_trade_no: out, total_amount: '9.90', subject: 'Tea "oolong"', product_code: 'FAST_INSTANT_TRADE_PAY' },
  });
  await Promise.all([page.waitForURL(/\/sandbox\/cashier\//), page.setContent(html)]);
  assert.equal(await page.textContent('#subject'), 'Tea "oolong"');
  assert.equal(await page.textContent('#amount'), '9.90');
  await Promise.all([page.waitForSelector('#cancelled'), page.click('#cancel')]);
  const q = await sdk.exec('alipay.trade.query', { bizContent: { out_trade_no: out } }, { validateSign: true });
  assert.equal(q.trade_status, 'WAIT_BUYER_PAY');
  const trades = await api(sb.base, 'GET', `/sandbox/api/trades?out_trade_no=${out}`);
  assert.equal(trades.length, 1);
});
