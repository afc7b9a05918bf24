// The buyer's and the merchant's journeys through the Zhifu checkout, in
// headless Chromium (Debian `chromium`, driven by playwright-core), against a
// running `zhifu dev` (run.sh starts it and sets ZHIFU_URL / ZHIFU_API_KEY).
//
// Every journey ends with a screenshot in screenshots/ and an axe-core
// check (no serious or critical violations). Pages are checked with their
// real Content-Security-Policy: a blocked script or style fails the test.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ALIPAY_APP, API_KEY, BASE, DESKTOP, JSQR, MERCHANT_PORT, PHONE, SHOTS,
  axe, buyToCashier, checkoutFromNode, finish, fitsWidth, open, orderByOutTradeNo,
  sandboxPay, text, waitForOrderStatus,
} from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));

describe('checkout journeys', () => {
  test('PC page pay: Buy → cashier → Pay → result page says Paid', async (t) => {
    const s = await open(DESKTOP);
    const { page } = s;
    await page.goto(BASE + '/');
    await page.locator('#products li').first().waitFor();
    await axe(page, 'the storefront (desktop)');
    const out = await buyToCashier(page, {
      sku: 'mug',
      quantity: 2,
      channel: 'page',
      subject: '支付马克杯 × 2',
      amount: '177.76',
    });
    await page.click('#pay');
    await page.waitForURL(/\/checkout\/result\?zhifu_checkout=/);
    await page.locator('#result[data-state="paid"]').waitFor();
    assert.equal(await text(page, '#result-title'), 'Paid');
    assert.equal(await text(page, '#result-amount'), '¥177.76');
    assert.equal((await orderByOutTradeNo(out)).status, 'paid');
    await axe(page, 'the result page (paid)');
    await finish(t, s, 'pc-page-pay');
  });

  test('phone wap pay: Buy → mobile cashier → Pay → Paid', async (t) => {
    const s = await open(PHONE);
    const { page } = s;
    await page.goto(BASE + '/');
    await page.locator('#products li').first().waitFor();
    // A phone is offered wap pay only.
    assert.equal(await page.locator('li[data-sku="tea"] button').count(), 1);
    await fitsWidth(page, 'the storefront at 360 px');
    await axe(page, 'the storefront (phone)');
    const out = await buyToCashier(page, {
      sku: 'tea',
      quantity: 1,
      channel: 'wap',
      subject: '龙井绿茶 100 克',
      amount: '36.50',
    });
    await page.click('#pay');
    await page.waitForURL(/\/checkout\/result\?zhifu_checkout=/);
    await page.locator('#result[data-state="paid"]').waitFor();
    assert.equal(await text(page, '#result-title'), '已支付');
    await fitsWidth(page, 'the result page at 360 px');
    assert.equal((await orderByOutTradeNo(out)).status, 'paid');
    await finish(t, s, 'phone-wap-pay');
  });

  test('phone wap cancel: Cancel on the cashier → result page says not paid, order stays pending', async (t) => {
    const s = await open(PHONE);
    const { page } = s;
    const out = await buyToCashier(page, {
      sku: 'mug',
      quantity: 1,
      channel: 'wap',
      subject: '支付马克杯',
      amount: '88.88',
    });
    await page.click('#cancel');
    await page.waitForURL(/\/checkout\/result\?zhifu_checkout=/);
    await page.locator('#result[data-state="pending"]').waitFor();
    assert.equal(await text(page, '#result-title'), '未支付');
    await axe(page, 'the result page (not paid)');
    assert.equal((await orderByOutTradeNo(out)).status, 'pending');
    await finish(t, s, 'phone-wap-cancel');
  });

  test('QR: the QR view shows, the sandbox pays, the view flips to Paid without a reload', async (t) => {
    const s = await open(DESKTOP);
    const { page } = s;
    await page.goto(BASE + '/');
    const target = 'li[data-sku="sticker"] button[data-channel="qr"]';
    await page.locator(target).waitFor();
    // Keyboard only: Tab to the QR button and press Enter.
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate((sel) => document.activeElement === document.querySelector(sel), target);
    }
    assert.ok(reached, 'the QR button is reachable with the keyboard');
    const created = page.waitForResponse((r) => r.url() === BASE + '/checkout' && r.request().method() === 'POST');
    await page.keyboard.press('Enter');
    const checkout = await (await created).json();
    assert.equal(checkout.channel, 'qr');
    const panel = page.locator('.zhifu-qr');
    await panel.waitFor();
    assert.equal(await panel.getAttribute('data-state'), 'pending');
    assert.ok(await page.locator('.zhifu-qr-img').isVisible(), 'the QR code is visible');
    const img = await page.locator('.zhifu-qr-img').evaluate((el) => ({ w: el.naturalWidth, src: el.src.slice(0, 30) }));
    assert.ok(img.w >= 200 && img.src.startsWith('data:image/svg+xml'), JSON.stringify(img));
    assert.match(await text(page, '.zhifu-qr-amount-value'), /^¥0\.01$/);
    assert.match(await text(page, '.zhifu-qr-countdown'), /\d\d:\d\d/);
    // The code scans: decode the image the page shows and compare.
    await page.evaluate(JSQR);
    const decoded = await page.locator('.zhifu-qr-img').evaluate((img) => {
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const g = c.getContext('2d');
      g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height);
      const r = window.jsQR(d.data, c.width, c.height);
      return r && r.data;
    });
    assert.equal(decoded, checkout.qr_code);
    await axe(page, 'the QR view');
    await page.screenshot({ path: join(SHOTS, 'qr-view-waiting.png') });
    // Mark this document: a reload would lose the mark.
    await page.evaluate(() => { window.__sameDocument = true; });
    await sandboxPay(checkout.out_trade_no);
    await page.locator('.zhifu-qr[data-state="paid"]').waitFor();
    assert.ok(await page.evaluate(() => window.__sameDocument === true), 'no reload happened');
    assert.match(await text(page, '.zhifu-qr-status'), /Paid/);
    assert.equal((await orderByOutTradeNo(checkout.out_trade_no)).status, 'paid');
    await finish(t, s, 'qr-pay');
  });

  test('QR: the countdown runs out and the view says expired', async (t) => {
    const s = await open(DESKTOP);
    const { page } = s;
    await page.clock.install();
    await page.goto(BASE + '/');
    await page.locator('li[data-sku="mug"] button[data-channel="qr"]').click();
    await page.locator('.zhifu-qr[data-state="pending"]').waitFor();
    const before = await text(page, '.zhifu-qr-countdown');
    const m = /(\d\d):(\d\d)/.exec(before);
    assert.ok(m, before);
    const left = Number(m[1]) * 60 + Number(m[2]);
    assert.ok(left > 60 && left <= 15 * 60, `a 15-minute deadline, not ${before}`);
    await page.clock.fastForward(30_000);
    const after30 = /(\d\d):(\d\d)/.exec(await text(page, '.zhifu-qr-countdown'));
    assert.ok(Number(after30[1]) * 60 + Number(after30[2]) <= left - 29, 'the countdown moves');
    await page.clock.fastForward((left + 5) * 1000);
    await page.locator('.zhifu-qr[data-state="expired"]').waitFor();
    assert.ok(await page.locator('.zhifu-qr-img').isHidden(), 'an expired code is not shown');
    await finish(t, s, 'qr-expired');
  });

  test('a forged return_url visit (valid-looking parameters, unpaid order) shows not paid', async (t) => {
    const c = await checkoutFromNode({ sku: 'mug', quantity: 1, channel: 'page' });
    const s = await open(DESKTOP);
    const { page } = s;
    const forged = new URL(c.result_url);
    for (const [k, v] of Object.entries({
      charset: 'utf-8',
      out_trade_no: c.out_trade_no,
      method: 'alipay.trade.page.pay.return',
      total_amount: c.total_amount,
      trade_no: '2026112522001400000000000042',
      trade_status: 'TRADE_SUCCESS',
      sign_type: 'RSA2',
      sign: Buffer.from('not a signature'.repeat(16)).toString('base64'),
    })) forged.searchParams.set(k, v);
    await page.goto(forged.toString());
    await page.locator('#result[data-state="pending"]').waitFor();
    assert.equal(await text(page, '#result-title'), 'Not paid');
    assert.equal((await orderByOutTradeNo(c.out_trade_no)).status, 'pending');

    // And a made-up checkout id is not an order at all.
    const s2 = await open(DESKTOP);
    await s2.page.goto(BASE + '/checkout/result?zhifu_checkout=co_Zm9yZ2Vk.AAAAAAAAAAAAAAAAAAAAAA&trade_status=TRADE_SUCCESS');
    await s2.page.locator('#result[data-state="unknown"]').waitFor();
    await s2.context.close();
    await finish(t, s, 'forged-return');
  });

  test('admin: list, filter, detail, refund a paid order, the status changes', async (t) => {
    // A paid order to refund.
    const c = await checkoutFromNode({ sku: 'tea', quantity: 2, channel: 'qr' });
    await sandboxPay(c.out_trade_no);
    await waitForOrderStatus(c.out_trade_no, 'paid');

    const s = await open(DESKTOP);
    const { page } = s;
    await page.goto(BASE + '/admin');
    await axe(page, 'the admin sign-in');
    await page.fill('#api-key', 'wrong-key-wrong-key');
    await page.press('#api-key', 'Enter');
    await page.locator('#key-view:not([hidden])').waitFor();
    await page.locator('#admin-message.error').waitFor();
    await page.fill('#api-key', API_KEY);
    await page.press('#api-key', 'Enter');
    const row = page.locator(`#orders-body tr:has-text("${c.out_trade_no}")`);
    await row.waitFor();
    assert.equal(await row.locator('.badge').getAttribute('data-status'), 'paid');
    await axe(page, 'the admin order list');
    // The key is in this tab's sessionStorage only.
    assert.equal(await page.evaluate(() => sessionStorage.getItem('zhifu.apiKey')), API_KEY);
    assert.equal(await page.evaluate(() => localStorage.getItem('zhifu.apiKey')), null);

    // Filter: pending orders only, then paid again.
    await page.selectOption('#status-filter', 'pending');
    await page.locator(`#orders-body tr:has-text("${c.out_trade_no}")`).waitFor({ state: 'detached' });
    const pendingBadges = await page.locator('#orders-body .badge').evaluateAll((els) => els.map((e) => e.dataset.status));
    assert.ok(pendingBadges.every((x) => x === 'pending'), JSON.stringify(pendingBadges));
    await page.selectOption('#status-filter', 'paid');
    await row.waitFor();

    await row.locator('button').click();
    await page.locator('#detail-view:not([hidden])').waitFor();
    assert.equal(await page.locator('#detail-status .badge').getAttribute('data-status'), 'paid');
    // The amount starts empty (a refund is typed, never prefilled); the help says what is left.
    assert.equal(await page.inputValue('#refund-amount'), '');
    assert.match(await text(page, '#refund-left'), /73\.00/);
    await axe(page, 'the admin order detail');
    // A partial refund keeps it paid; it needs a confirmation naming amount and order …
    await page.fill('#refund-amount', '10');
    await page.fill('#refund-reason', 'browser test: partial');
    await page.click('#refund-submit');
    await page.locator('#refund-confirm-box:not([hidden])').waitFor();
    const ask = await text(page, '#refund-confirm-text');
    assert.match(ask, /¥10\.00/);
    assert.ok(ask.includes(c.out_trade_no), ask);
    await axe(page, 'the refund confirmation');
    // … and nothing was sent before it.
    assert.ok(['0.00', null, undefined].includes((await orderByOutTradeNo(c.out_trade_no)).refunded_amount));
    await page.click('#refund-confirm');
    await page.locator('#detail-refunded:has-text("¥10.00")').waitFor();
    assert.equal(await page.locator('#detail-status .badge').getAttribute('data-status'), 'paid');
    // … the rest refunds it in full (typed again: the field is empty after a refund).
    assert.equal(await page.inputValue('#refund-amount'), '');
    assert.match(await text(page, '#refund-left'), /63\.00/);
    await page.fill('#refund-amount', '63.00');
    await page.click('#refund-submit');
    await page.click('#refund-confirm');
    await page.locator('#detail-status .badge[data-status="refunded"]').waitFor();
    assert.equal(await text(page, '#detail-refunded'), '¥73.00');
    assert.ok(await page.locator('#refund-box').isHidden(), 'nothing left to refund');
    const o = await orderByOutTradeNo(c.out_trade_no);
    assert.equal(o.status, 'refunded');
    assert.equal(o.refunded_amount, '73.00');
    // The order's history, with webhook delivery state, when the API lists it.
    const documented = (await (await fetch(BASE + '/openapi.json')).json()).paths['/v1/orders/{id}/events'];
    if (documented) {
      const events = page.locator('#detail-events table');
      await events.locator('td:has-text("order.refunded")').waitFor();
      const types = await events.locator('tbody tr td:nth-child(2)').allTextContents();
      assert.deepEqual(types, ['order.paid', 'order.partially_refunded', 'order.refunded']);
    } else {
      await page.locator('#detail-extra .help').waitFor();
    }
    await axe(page, 'the admin order detail after refunds');
    await finish(t, s, 'admin-refund');
  });

  test('admin: close a pending order', async (t) => {
    const c = await checkoutFromNode({ sku: 'sticker', quantity: 1, channel: 'page' });
    const s = await open({ ...PHONE, locale: 'en-US' });
    const { page } = s;
    await page.goto(BASE + '/admin');
    await page.fill('#api-key', API_KEY);
    await page.press('#api-key', 'Enter');
    const row = page.locator(`#orders-body tr:has-text("${c.out_trade_no}")`);
    await row.waitFor();
    await fitsWidth(page, 'the admin list at 360 px');
    await row.locator('button').click();
    await page.locator('#close-box:not([hidden])').waitFor();
    await page.click('#close-order');
    assert.match(await text(page, '#close-order'), /again/);
    await page.click('#close-order');
    // A page-pay order Alipay has no trade for yet: the buyer's signed URL
    // still works until it expires, so the order is `closing`, not closed.
    await page.locator('#detail-status .badge[data-status="closing"]').waitFor();
    assert.match(await text(page, '#admin-message'), /closing/i);
    assert.equal((await orderByOutTradeNo(c.out_trade_no)).status, 'closing');
    await fitsWidth(page, 'the admin detail at 360 px');
    await finish(t, s, 'admin-close');
  });

  test('jsapi: inside the Alipay app, zhifu.js pays through AlipayJSBridge tradePay', async (t) => {
    const s = await open(ALIPAY_APP);
    const { page } = s;
    await page.goto(BASE + '/');
    const button = page.locator('li[data-sku="mug"] button[data-channel="jsapi"]');
    await button.waitFor();
    assert.ok(await page.evaluate(() => window.AlipayJSBridge && window.AlipayJSBridge.sandboxStandIn), 'the stand-in bridge is present');
    const created = page.waitForResponse((r) => r.url() === BASE + '/checkout' && r.request().method() === 'POST');
    await button.click();
    const checkout = await (await created).json();
    assert.equal(checkout.channel, 'jsapi');
    assert.match(checkout.trade_no, /^\d{28}$/);
    // The (stand-in) Alipay cashier: cancel once …
    await page.locator('#zhifu-bridge-cashier').waitFor();
    assert.equal(await text(page, '#zhifu-bridge-amount'), '¥88.88');
    await page.click('#zhifu-bridge-cancel');
    await page.locator('#message.error').waitFor();
    assert.equal((await orderByOutTradeNo(checkout.out_trade_no)).status, 'pending');
    // … then pay (a new checkout).
    const again = page.waitForResponse((r) => r.url() === BASE + '/checkout' && r.request().method() === 'POST');
    await button.click();
    const second = await (await again).json();
    await page.locator('#zhifu-bridge-cashier').waitFor();
    await axe(page, 'the stand-in Alipay cashier');
    await page.click('#zhifu-bridge-pay');
    await page.locator('#paid-view:not([hidden])').waitFor();
    assert.match(await text(page, '#paid-text'), /88\.88/);
    assert.equal((await orderByOutTradeNo(second.out_trade_no)).status, 'paid');
    await fitsWidth(page, 'the paid view at 360 px');
    await finish(t, s, 'jsapi-app-pay');
  });

  test("zhifu.js on a merchant's own page of another origin (the README example, QR)", async (t) => {
    // The merchant's origin: another port on this machine (a different origin,
    // so the checkout calls are cross-origin and need the server's CORS allowance;
    // the same loopback address space, so Chromium's local-network rules stay on).
    const html = readFileSync(join(here, 'merchant-page.html'), 'utf8')
      .replaceAll('https://pay.example.com', BASE)
      .replace("channel: 'auto'", "channel: 'qr'");
    const shop = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(html);
    });
    await new Promise((r) => shop.listen(Number(MERCHANT_PORT), '127.0.0.1', r));
    try {
      const s = await open(DESKTOP);
      const { page } = s;
      await page.goto(`http://127.0.0.1:${MERCHANT_PORT}/`);
      const created = page.waitForResponse((r) => r.url() === BASE + '/checkout' && r.request().method() === 'POST');
      await page.click('#buy');
      const checkout = await (await created).json();
      assert.equal(checkout.total_amount, '88.88');
      await page.locator('#qr .zhifu-qr[data-state="pending"] img').waitFor();
      const paid = page.waitForEvent('dialog');
      await sandboxPay(checkout.out_trade_no);
      const dialog = await paid;
      assert.equal(dialog.message(), 'Paid ¥88.88');
      await dialog.accept();
      await page.locator('#qr .zhifu-qr[data-state="paid"]').waitFor();
      await finish(t, s, 'merchant-page-qr');
    } finally {
      shop.close();
    }
  });

  test('language switch and keyboard focus on the storefront', async (t) => {
    const s = await open(DESKTOP);
    const { page } = s;
    await page.goto(BASE + '/');
    await page.locator('#products li').first().waitFor();
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.equal(await text(page, 'li[data-sku="mug"] h2'), 'Zhifu mug');
    await page.click('#lang-switch');
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.equal(await text(page, 'li[data-sku="mug"] h2'), '支付马克杯');
    assert.equal(await text(page, 'li[data-sku="mug"] button[data-channel="page"]'), '支付宝付款');
    await axe(page, 'the storefront in Chinese');
    // The choice sticks across pages.
    await page.goto(BASE + '/admin');
    assert.equal(await text(page, '#key-heading'), '登录');
    // The skip link is the first stop and moves focus to the main content.
    await page.goto(BASE + '/');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
    await finish(t, s, 'storefront-zh');
  });
});
