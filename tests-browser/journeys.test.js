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
    // The first click authorizes the buyer (Alipay's authorize page and
    // back, see the next journey) before the checkout is made.
    const created = page.waitForResponse((r) => r.url() === BASE + '/checkout' && r.request().method() === 'POST' && r.status() === 201);
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

// Subscriptions (issue 13): appended, with its own imports (import
// declarations are hoisted, so they may sit down here).
import { api as merchantApi } from './lib.js';

describe('subscription journey', () => {
  test('storefront Subscribe → sandbox signing page → Agree → result says active → admin lists it and cancels it (390 px)', async (t) => {
    const before = new Set((await merchantApi('GET', '/v1/subscriptions?limit=100')).data.map((x) => x.id));
    const s = await open(DESKTOP);
    const { page } = s;
    await page.goto(BASE + '/');
    const product = page.locator('li[data-sku="pro-monthly"]');
    const button = product.locator('button[data-action="subscribe"]');
    await button.waitFor();
    // A subscription has no quantity and cannot be bought once.
    assert.equal(await product.locator('input.qty').count(), 0);
    assert.equal(await product.locator('button').count(), 1);
    assert.equal(await text(page, 'li[data-sku="pro-monthly"] button[data-action="subscribe"]'), 'Subscribe ¥30.00 / month');
    await page.click('#lang-switch');
    assert.equal(await text(page, 'li[data-sku="pro-monthly"] button[data-action="subscribe"]'), '订阅 ¥30.00 / 月');
    await page.click('#lang-switch');
    await axe(page, 'the storefront with a subscription product');

    // The answer is read on its way to the page (the page navigates away at once).
    let sub = null;
    await page.route(BASE + '/checkout/subscriptions', async (route) => {
      const r = await route.fetch();
      sub = await r.json();
      await route.fulfill({ response: r });
    });
    await button.click();
    await page.waitForURL(/\/sandbox\/sign\//);
    assert.ok(sub, 'POST /checkout/subscriptions answered');
    assert.equal(sub.status, 'pending_signature');
    assert.equal(sub.amount, '30.00');
    assert.deepEqual(sub.period, { unit: 'month', every: 1 });
    assert.match(sub.checkout_id, /^cs_/);
    // The sandbox's signing page shows the plan; the buyer agrees.
    assert.match(await page.locator('body').textContent(), /30\.00/);
    await page.click('#agree');
    // Back on the result page, which learns the status from the server only.
    await page.waitForURL(/\/checkout\/result\?zhifu_subscription=/);
    await page.locator('#result[data-state="active"]').waitFor();
    assert.equal(await text(page, '#result-title'), 'Subscription active');
    assert.equal(await text(page, '#result-amount'), '¥30.00 / month');
    assert.equal(await text(page, '#result-status'), 'Active');
    await axe(page, 'the result page (subscription active)');

    // The merchant API agrees, through the signed dut_user_sign notification or the query.
    const fresh = (await merchantApi('GET', '/v1/subscriptions?limit=100')).data.filter((x) => !before.has(x.id));
    assert.equal(fresh.length, 1, JSON.stringify(fresh));
    const id = fresh[0].id;
    assert.equal(fresh[0].status, 'active');
    assert.equal(fresh[0].amount, '30.00');
    assert.equal(fresh[0].max_periods, 12);
    assert.equal(fresh[0].metadata.sku, 'pro-monthly');
    assert.ok(fresh[0].agreement_no, 'signed: Alipay agreement number known');

    // The scheduled pass charges the first period (due today): one charge order.
    await merchantApi('POST', '/v1/reconcile', { max_seconds: 5 });
    let charged = null;
    for (let i = 0; i < 50 && !(charged && charged.periods_charged === 1); i++) {
      charged = await merchantApi('GET', `/v1/subscriptions/${id}`);
      if (charged.periods_charged !== 1) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(charged.periods_charged, 1, JSON.stringify(charged));
    assert.equal(charged.charges.length, 1);
    const charge = charged.charges[0];
    assert.equal(charge.status, 'paid');

    // A forged id on the result URL is no subscription at all.
    const forged = await open(DESKTOP);
    await forged.page.goto(BASE + '/checkout/result?zhifu_subscription=cs_Zm9yZ2Vk.AAAAAAAAAAAAAAAAAAAAAA');
    await forged.page.locator('#result[data-state="unknown"]').waitFor();
    await forged.context.close();
    await finish(t, s, 'subscription-signed');

    // The admin's Subscriptions tab lists it; Cancel asks first, then unsigns.
    const a = await open({ ...PHONE, viewport: { width: 390, height: 844 }, locale: 'en-US' });
    const admin = a.page;
    await admin.goto(BASE + '/admin');
    await admin.fill('#api-key', API_KEY);
    await admin.press('#api-key', 'Enter');
    await admin.locator('#admin-tabs:not([hidden])').waitFor();
    await admin.click('#tab-subscriptions');
    const row = admin.locator(`#subs-body tr[data-subscription-id="${id}"]`);
    await row.waitFor();
    assert.equal(await row.locator('.badge').getAttribute('data-status'), 'active');
    assert.match(await row.locator('td.num').first().textContent(), /¥30\.00 \/ month/);
    assert.equal((await row.locator('td.num').nth(1).textContent()).trim(), '1 / 12');
    assert.equal(await admin.getAttribute('#tab-subscriptions', 'aria-pressed'), 'true');
    await fitsWidth(admin, 'the subscriptions list at 390 px');
    await axe(admin, 'the subscriptions list (390 px)');
    await row.locator('button').click();
    await admin.locator('#sub-detail-view:not([hidden])').waitFor();
    assert.equal(await admin.locator('#sub-status .badge').getAttribute('data-status'), 'active');
    assert.equal(await text(admin, '#sub-periods'), '1');
    // Its charge: period 1, the catalog amount, paid.
    const chargeRow = admin.locator(`#sub-charges tr:has-text("${charge.out_trade_no}")`);
    await chargeRow.waitFor();
    const cells = await chargeRow.locator('td').allTextContents();
    assert.equal(cells[0], '1', JSON.stringify(cells));
    assert.ok(cells.includes('¥30.00') && cells.includes('Paid'), JSON.stringify(cells));
    await axe(admin, 'the subscription detail with its charges (390 px)');
    await admin.click('#sub-cancel');
    await admin.locator('#sub-cancel-confirm-box:not([hidden])').waitFor();
    assert.match(await text(admin, '#sub-cancel-confirm-text'), /¥30\.00 \/ month/);
    await fitsWidth(admin, 'the cancel confirmation at 390 px');
    await axe(admin, 'the subscription cancel confirmation (390 px)');
    // Keeping it sends nothing.
    await admin.click('#sub-cancel-keep');
    assert.ok(await admin.locator('#sub-cancel-confirm-box').isHidden());
    assert.equal((await merchantApi('GET', `/v1/subscriptions/${id}`)).status, 'active');
    await admin.click('#sub-cancel');
    await admin.click('#sub-cancel-confirm');
    await admin.locator('#sub-status .badge[data-status="canceled"]').waitFor();
    assert.ok(await admin.locator('#sub-cancel-box').isHidden(), 'nothing left to cancel');
    assert.equal((await merchantApi('GET', `/v1/subscriptions/${id}`)).status, 'canceled');
    await fitsWidth(admin, 'the subscription detail at 390 px');
    await finish(t, a, 'admin-subscription-cancel-390');
  });
});

describe('in-app authorization (jsapi)', () => {
  test('jsapi: inside the Alipay app the buyer is authorized on the authorize page, never named by the page', async (t) => {
    const s = await open(ALIPAY_APP);
    const { page } = s;
    const seen = [];
    page.on('request', (r) => { if (r.isNavigationRequest()) seen.push(new URL(r.url()).pathname); });
    await page.goto(BASE + '/');
    const button = page.locator('li[data-sku="tea"] button[data-channel="jsapi"]');
    await button.waitFor();
    // Not authorized yet: the server refuses a jsapi checkout without the
    // buyer's authorization, and one whose body names a buyer at all.
    const before = await page.evaluate(async () => {
      const post = (body) => fetch('/checkout', {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
      return {
        bare: await post({ sku: 'tea', quantity: 1, channel: 'jsapi' }),
        forged: await post({ sku: 'tea', quantity: 1, channel: 'jsapi', buyer_id: '2088102177846880' }),
      };
    });
    assert.equal(before.bare.status, 401);
    assert.equal(before.bare.body.error.code, 'authorization_required');
    assert.equal(before.forged.status, 400);
    assert.equal(before.forged.body.error.code, 'buyer_not_accepted');

    const created = page.waitForResponse((r) => r.url() === BASE + '/checkout' && r.request().method() === 'POST' && r.status() === 201);
    await button.click();
    // Storefront → /checkout/authorize → the sandbox's authorize page
    // (auth_base: silent) → /checkout/authorize/callback → back to the
    // storefront, which resumes the purchase: the stand-in cashier opens.
    await page.locator('#zhifu-bridge-cashier').waitFor();
    const checkout = await (await created).json();
    assert.equal(checkout.channel, 'jsapi');
    for (const hop of ['/checkout/authorize', '/sandbox/oauth2/publicAppAuthorize.htm', '/checkout/authorize/callback']) {
      assert.ok(seen.includes(hop), `the browser went through ${hop}: ${seen.join(' → ')}`);
    }
    const cookies = await s.context.cookies(BASE + '/checkout');
    const buyer = cookies.find((c) => c.name === 'zhifu_buyer');
    assert.ok(buyer && buyer.httpOnly && buyer.sameSite === 'Lax', 'the buyer is kept in an HttpOnly, SameSite=Lax cookie');
    assert.equal(await page.evaluate(() => document.cookie.includes('zhifu_buyer')), false, 'the page cannot read it');
    // The trade was created for the authorized buyer, not the stand-in one.
    const log = await (await fetch(BASE + '/sandbox/api/requests?method=alipay.trade.create&out_trade_no=' + checkout.out_trade_no)).json();
    assert.equal(log.requests.length, 1);
    assert.ok(log.requests[0].biz_content.buyer_open_id, 'buyer_open_id from authorization');
    assert.equal(log.requests[0].biz_content.buyer_id, undefined);
    // Authorized now, the page still cannot name another buyer.
    const forged = await page.evaluate(() => fetch('/checkout', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sku: 'tea', quantity: 1, channel: 'jsapi', buyer_open_id: 'someone-else' }),
    }).then((r) => r.json()));
    assert.equal(forged.error.code, 'buyer_not_accepted');
    await axe(page, 'the stand-in Alipay cashier after authorization');
    await page.click('#zhifu-bridge-pay');
    await page.locator('#paid-view:not([hidden])').waitFor();
    assert.match(await text(page, '#paid-text'), /36\.50/);
    assert.equal((await orderByOutTradeNo(checkout.out_trade_no)).status, 'paid');
    assert.equal(new URL(page.url()).search, '', 'a reload does not buy again');
    await finish(t, s, 'jsapi-authorize-pay');
  });
  test("jsapi: zhifu.js with authorize: 'bridge' gets the code from the app's getAuthCode, then pays", async (t) => {
    const s = await open(ALIPAY_APP);
    const { page } = s;
    await page.goto(BASE + '/');
    await page.locator('#products li').first().waitFor();
    const codes = [];
    page.on('request', (r) => { if (r.url().endsWith('/checkout/authorize/code')) codes.push(r.method()); });
    // A merchant page's own call: no navigation, the bridge hands the code.
    const created = page.evaluate(() => new Promise((resolve, reject) => {
      window.Zhifu.checkout({
        sku: 'mug', quantity: 1, channel: 'jsapi', authorize: 'bridge',
        onCreated: (c) => resolve(c), onError: (e) => reject(new Error(e.code + ': ' + e.message)),
      }).catch(() => {});
    }));
    await page.locator('#zhifu-bridge-cashier').waitFor();
    const checkout = await created;
    assert.equal(checkout.channel, 'jsapi');
    assert.deepEqual(codes, ['POST']);
    assert.equal(new URL(page.url()).pathname, '/', 'the page never left');
    const log = await (await fetch(BASE + '/sandbox/api/requests?method=alipay.trade.create&out_trade_no=' + checkout.out_trade_no)).json();
    assert.ok(log.requests[0].biz_content.buyer_open_id, 'buyer_open_id from authorization');
    await page.click('#zhifu-bridge-pay');
    await waitForOrderStatus(checkout.out_trade_no, 'paid');
    await finish(t, s, 'jsapi-bridge-authorize-pay');
  });
});

describe('subscription result page', () => {
  test('a phone is offered wap signing; the result page goes from "not signed yet" to active once Alipay confirms', async (t) => {
    // The phone storefront (Chinese): one Subscribe button, wap signing, no overflow.
    const phone = await open(PHONE);
    await phone.page.goto(BASE + '/');
    const b = phone.page.locator('li[data-sku="pro-monthly"] button[data-action="subscribe"]');
    await b.waitFor();
    assert.equal(await b.getAttribute('data-channel'), 'wap');
    assert.equal((await b.textContent()).trim(), '订阅 ¥30.00 / 月');
    await fitsWidth(phone.page, 'the storefront with a subscription at 360 px');
    await phone.context.close();

    // A subscription made the way a browser makes one, not signed yet.
    const r = await fetch(BASE + '/checkout/subscriptions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sku: 'pro-monthly', channel: 'wap' }),
    });
    assert.equal(r.status, 201);
    const sub = await r.json();
    const s = await open(DESKTOP);
    const { page } = s;
    await page.goto(sub.result_url);
    await page.locator('#result[data-state="pending_signature"]').waitFor();
    assert.equal(await text(page, '#result-title'), 'Not signed yet');
    assert.equal(await text(page, '#result-status'), 'Awaiting signature');
    assert.ok(await page.locator('#result-next').isHidden(), 'no charge date before signing');
    await axe(page, 'the result page (subscription not signed)');

    // The buyer signs elsewhere (gateway → signing page → Agree) …
    const gw = await fetch(sub.sign.url, { redirect: 'manual' });
    const signPage = new URL(gw.headers.get('location'), BASE).toString();
    assert.match(signPage, /\/sandbox\/sign\//);
    const agreed = await fetch(signPage + '/agree', { method: 'POST', redirect: 'manual' });
    assert.ok([302, 303].includes(agreed.status), `agree answered ${agreed.status}`);
    // … and "Check again" asks the server, which now says active.
    await page.click('#result-again');
    await page.locator('#result[data-state="active"]').waitFor();
    assert.equal(await text(page, '#result-status'), 'Active');
    assert.ok(await page.locator('#result-again').isHidden(), 'nothing left to check');
    assert.match(await text(page, '#result-next'), /^\d{4}-\d\d-\d\d$/);
    await finish(t, s, 'subscription-pending-then-active');
  });
});
