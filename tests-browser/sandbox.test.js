// The sandbox console (/sandbox/: trades, one trade, the notification log)
// and the admin page at 390 px (a phone) and 1280 px (a desktop), in headless
// Chromium against a running `zhifu dev` (run.sh starts it):
// - nothing is wider than the viewport, and Amount and Status are never cut off;
// - axe-core finds no serious or critical violation on any page;
// - one language at a time: Chinese first, English through the switch, kept
//   across pages; no Rust names ("OneShot", "Auto") on screen;
// - the buttons work: Pay on the sandbox page makes the merchant's order paid
//   through the real notification; Resend sends it again; Close closes;
// - Cancel on the cashier leads back to the merchant;
// - an admin refund starts from an empty amount and needs a confirmation.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  API_KEY, BASE, DESKTOP, PHONE, axe, buyToCashier, checkoutFromNode, finish, fitsWidth, open,
  orderByOutTradeNo, sandboxPay, text, waitForOrderStatus,
} from './lib.js';

const PHONE_390 = { ...PHONE, viewport: { width: 390, height: 844 } };
const WIDTHS = [
  ['390', PHONE_390],
  ['1280', DESKTOP],
];
const RUST_NAMES = /\b(OneShot|GaveUp|Auto|Explicit|WaitBuyerPay|TradeSuccess|Some\(|None)\b/;

/** The element lies inside the viewport and its text is not clipped. */
async function whole(locator, what) {
  await locator.scrollIntoViewIfNeeded();
  const m = await locator.evaluate((el) => {
    const r = el.getBoundingClientRect();
    return {
      left: r.left,
      right: r.right,
      width: r.width,
      clipped: el.scrollWidth > el.clientWidth + 1,
    };
  });
  // The device's width (a mobile layout viewport grows with overflow).
  m.viewport = locator.page().viewportSize().width;
  assert.ok(m.width > 0, `${what} is shown`);
  assert.ok(m.left >= 0 && m.right <= m.viewport + 0.5, `${what} spans ${m.left}–${m.right} px of a ${m.viewport} px viewport`);
  assert.ok(!m.clipped, `${what} is clipped`);
}

async function noRustNames(page, what) {
  const shown = await page.locator('body').innerText();
  assert.doesNotMatch(shown, RUST_NAMES, `${what} shows a Rust name`);
}

async function sandboxDeliveries(outTradeNo) {
  const r = await fetch(`${BASE}/sandbox/api/notifications?out_trade_no=${encodeURIComponent(outTradeNo)}`);
  assert.equal(r.status, 200);
  return r.json();
}

describe('sandbox console', () => {
  for (const [width, device] of WIDTHS) {
    test(`overview and trade page at ${width} px: fit, accessible, Chinese first, English on the switch`, async (t) => {
      const c = await checkoutFromNode({ sku: 'mug', quantity: 1, channel: 'qr' });
      const s = await open(device);
      const { page } = s;
      await page.goto(BASE + '/sandbox/');
      assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
      assert.equal(await text(page, '#trades-heading'), '交易');
      const row = page.locator(`#trades tr[data-out-trade-no="${c.out_trade_no}"]`);
      await row.waitFor();
      assert.equal(await row.locator('.badge').getAttribute('data-status'), 'NOT_OPENED');
      await fitsWidth(page, `the sandbox overview at ${width} px`);
      await whole(row.locator('td.amount'), 'the amount');
      await whole(row.locator('.badge'), 'the status');
      await noRustNames(page, 'the overview');
      await axe(page, `the sandbox overview (${width} px)`);

      await page.click('#lang-switch');
      await page.waitForURL(/lang=en/);
      assert.equal(await page.getAttribute('html', 'lang'), 'en');
      assert.equal(await text(page, '#trades-heading'), 'Trades');
      assert.equal(await text(page, '#lang-switch'), '中文');
      assert.ok(!(await page.locator('nav').innerText()).includes('交易'), 'one language at a time');
      assert.match(await text(page, '#mode'), /^Automatic/);
      await noRustNames(page, 'the overview in English');
      await axe(page, `the sandbox overview in English (${width} px)`);

      // The choice sticks: the trade page (no ?lang) is in English too.
      await row.locator('a').click();
      await page.waitForURL(/\/sandbox\/trades\//);
      assert.equal(await page.getAttribute('html', 'lang'), 'en');
      assert.equal(await text(page, '#out-trade-no'), c.out_trade_no);
      assert.equal(await text(page, '#action-pay'), 'Pay as the buyer');
      await fitsWidth(page, `the trade page at ${width} px`);
      await whole(page.locator('#trade-amount'), 'the amount');
      await whole(page.locator('#trade-status'), 'the status');
      await noRustNames(page, 'the trade page');
      await axe(page, `the sandbox trade page (${width} px)`);
      await page.click('#lang-switch');
      await page.waitForURL(/lang=zh/);
      assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
      assert.equal(await text(page, '#action-pay'), '以买家身份付款');
      await finish(t, s, `sandbox-trade-${width}`);
    });
  }

  test('Pay on the sandbox page → the merchant order is paid through the notification; Resend from the log (390 px)', async (t) => {
    const c = await checkoutFromNode({ sku: 'tea', quantity: 1, channel: 'qr' });
    assert.equal((await orderByOutTradeNo(c.out_trade_no)).status, 'pending');
    const s = await open(PHONE_390);
    const { page } = s;
    await page.goto(BASE + '/sandbox/');
    await page.locator(`#trades tr[data-out-trade-no="${c.out_trade_no}"] a`).click();
    await page.waitForURL(/\/sandbox\/trades\//);
    await page.click('#action-pay');
    await page.waitForURL(/done=paid/);
    await page.locator('#notice').waitFor();
    assert.equal(await page.locator('#trade-status').getAttribute('data-status'), 'TRADE_SUCCESS');
    assert.equal(await page.locator('#action-pay').count(), 0, 'a paid trade offers no second payment');
    await waitForOrderStatus(c.out_trade_no, 'paid');
    await axe(page, 'the paid trade page with its refund form');
    await fitsWidth(page, 'the paid trade page at 390 px');

    // The notification log: delivered once; Resend delivers it again.
    await page.goto(`${BASE}/sandbox/notifications?out_trade_no=${encodeURIComponent(c.out_trade_no)}`);
    const row = page.locator('#notifications tbody tr').first();
    await row.waitFor();
    for (let i = 0; i < 50 && (await row.locator('.badge').getAttribute('data-state')) !== 'delivered'; i++) {
      await page.waitForTimeout(100);
      await page.reload();
    }
    assert.equal(await row.locator('.badge').getAttribute('data-state'), 'delivered');
    await fitsWidth(page, 'the notification log at 390 px');
    await noRustNames(page, 'the notification log');
    await axe(page, 'the notification log (390 px)');
    const before = (await sandboxDeliveries(c.out_trade_no))[0].attempts.length;
    await row.locator('button.resend').click();
    await page.waitForURL(/done=resent/);
    assert.ok(page.url().includes('out_trade_no=' + c.out_trade_no), 'back to the same filtered log');
    await page.locator('#notice').waitFor();
    const after = (await sandboxDeliveries(c.out_trade_no))[0];
    assert.equal(after.attempts.length, before + 1);
    assert.equal(after.attempts.at(-1).kind, 'resend');
    assert.ok(after.attempts.at(-1).success, 'the merchant answered success again');
    assert.equal((await orderByOutTradeNo(c.out_trade_no)).status, 'paid', 'a replay changes nothing');
    await finish(t, s, 'sandbox-pay-resend-390');
  });

  test('every console page fits 360 px', async (t) => {
    const c = await checkoutFromNode({ sku: 'mug', quantity: 3, channel: 'qr' });
    await sandboxPay(c.out_trade_no);
    const s = await open(PHONE);
    const { page } = s;
    await page.goto(BASE + '/sandbox/notifications');
    await fitsWidth(page, 'the notification log at 360 px');
    await page.goto(BASE + '/sandbox/');
    await fitsWidth(page, 'the overview at 360 px');
    await page.locator(`#trades tr[data-out-trade-no="${c.out_trade_no}"] a`).click();
    await page.waitForURL(/\/sandbox\/trades\//);
    await fitsWidth(page, 'the trade page at 360 px');
    await finish(t, s, 'sandbox-360');
  });

  test('Close an unpaid order from the sandbox page (1280 px)', async (t) => {
    const c = await checkoutFromNode({ sku: 'sticker', quantity: 1, channel: 'qr' });
    const s = await open(DESKTOP);
    const { page } = s;
    await page.goto(BASE + '/sandbox/');
    await page.locator(`#trades tr[data-out-trade-no="${c.out_trade_no}"] a`).click();
    await page.click('#action-close');
    await page.waitForURL(/done=(closed|silent)/);
    await page.locator('#notice').waitFor();
    assert.equal(await page.locator('#trade-status').getAttribute('data-status'), 'TRADE_CLOSED');
    assert.equal(await page.locator('#action-pay').count(), 0);
    await finish(t, s, 'sandbox-close-1280');
  });

  test('Cancel on the PC cashier → a link back to the merchant, whose page says not paid', async (t) => {
    const s = await open(DESKTOP);
    const { page } = s;
    const out = await buyToCashier(page, {
      sku: 'mug',
      quantity: 1,
      channel: 'page',
      subject: '支付马克杯',
      amount: '88.88',
    });
    await axe(page, 'the cashier (desktop)');
    await page.click('#cancel');
    await page.locator('#cancelled').waitFor();
    await axe(page, 'the cancelled page');
    await page.click('#back-to-merchant');
    await page.waitForURL(/\/checkout\/result\?zhifu_checkout=/);
    await page.locator('#result[data-state="pending"]').waitFor();
    assert.equal((await orderByOutTradeNo(out)).status, 'pending');
    await finish(t, s, 'cashier-cancel-back');
  });

  test('the cashier at 390 px: fits, accessible, one language', async (t) => {
    const s = await open(PHONE_390);
    const { page } = s;
    await buyToCashier(page, { sku: 'tea', quantity: 1, channel: 'wap', subject: '龙井绿茶 100 克', amount: '36.50' });
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.equal(await text(page, '#pay'), '确认付款');
    await fitsWidth(page, 'the cashier at 390 px');
    await whole(page.locator('#amount'), 'the amount');
    await axe(page, 'the cashier (390 px)');
    await page.click('#lang-switch');
    await page.waitForURL(/lang=en/);
    assert.equal(await text(page, '#pay'), 'Pay now');
    assert.equal(await text(page, '#cancel'), 'Cancel');
    await noRustNames(page, 'the cashier');
    await finish(t, s, 'cashier-390-en');
  });
});

describe('admin at 390 and 1280 px', () => {
  for (const [width, device] of WIDTHS) {
    test(`orders list and refund with confirmation at ${width} px`, async (t) => {
      const c = await checkoutFromNode({ sku: 'mug', quantity: 1, channel: 'qr' });
      await sandboxPay(c.out_trade_no);
      await waitForOrderStatus(c.out_trade_no, 'paid');
      const s = await open(device);
      const { page } = s;
      await page.goto(BASE + '/admin');
      await page.fill('#api-key', API_KEY);
      await page.press('#api-key', 'Enter');
      const row = page.locator(`#orders-body tr:has-text("${c.out_trade_no}")`);
      await row.waitFor();
      await fitsWidth(page, `the admin list at ${width} px`);
      await whole(row.locator('td.num'), 'the amount');
      await whole(row.locator('.badge'), 'the status');
      await axe(page, `the admin list (${width} px)`);

      await row.locator('button').click();
      await page.locator('#detail-view:not([hidden])').waitFor();
      assert.equal(await page.inputValue('#refund-amount'), '', 'the refund amount starts empty');
      // Submitting asks first; Cancel sends nothing.
      await page.fill('#refund-amount', '1.00');
      await page.click('#refund-submit');
      await page.locator('#refund-confirm-box:not([hidden])').waitFor();
      const ask = await text(page, '#refund-confirm-text');
      assert.match(ask, /¥1\.00/);
      assert.ok(ask.includes(c.out_trade_no), ask);
      await fitsWidth(page, `the refund confirmation at ${width} px`);
      await axe(page, `the refund confirmation (${width} px)`);
      await page.click('#refund-cancel');
      assert.ok(await page.locator('#refund-confirm-box').isHidden());
      assert.ok(['0.00', null, undefined].includes((await orderByOutTradeNo(c.out_trade_no)).refunded_amount));
      // More than is left is refused before any confirmation.
      await page.fill('#refund-amount', '1000');
      await page.click('#refund-submit');
      await page.locator('#admin-message.error').waitFor();
      assert.ok(await page.locator('#refund-confirm-box').isHidden());
      // Confirmed: the refund happens.
      await page.fill('#refund-amount', '1.00');
      await page.click('#refund-submit');
      await page.click('#refund-confirm');
      await page.locator('#detail-refunded:has-text("¥1.00")').waitFor();
      assert.equal((await orderByOutTradeNo(c.out_trade_no)).refunded_amount, '1.00');
      assert.equal(await page.inputValue('#refund-amount'), '');
      await fitsWidth(page, `the admin detail at ${width} px`);
      await finish(t, s, `admin-refund-confirm-${width}`);
    });
  }
});
